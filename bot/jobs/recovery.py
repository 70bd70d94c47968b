"""Taking jobs back after a restart, the shard heartbeat, and the start-up ledger sweep.

When the gateway is ready, the process claims the shards it runs (`shard_owners`) and keeps a
heartbeat. Then it takes back every journaled job of those shards that no live job here holds,
whoever started it (this process before a crash, or a dead process that ran the shard):

* `submitted`: Novita has the task: polled again and delivered (never submitted twice);
* `waiting`: it never reached Novita: run again under its original admission (same ledger row);
* `submitting`: a submit may or may not have reached Novita: not repeated; the member is told
  it was stopped by a restart and not counted, and the row is refunded to them (but counted in
  spend: Novita may bill it);
* `delivered`: the result was posted before the process stopped: settled as succeeded without
  touching Discord (never posted twice, never overwritten).

Each job taken back gets its display rebuilt from its journal row (`DisplayRebuilder`: the
Discord edge answers through the stored interaction token while it is valid, else posts late).
Finally the sweep settles ledger rows still reserved or submitted that no journal row covers
(nobody can deliver them; a submitted one stays in spend), so every member's quota is exact
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Protocol

from bot.clock import Sleep, WallClock, utc_now
from bot.imaging import InvalidSizeError, parse_size
from bot.jobs.active import ActiveJob, DisplayRebuilder
from bot.jobs.lifecycle import JobLifecycle
from bot.jobs.model import JobKind, JobRequest, JobStage, JobStatus, shard_of
from bot.storage.repositories.journal import JobJournal, JournalEntry, ShardOwners
from bot.storage.repositories.ledger import ACTIVE, LedgerEntry, UsageLedger

log = logging.getLogger(__name__)

# An owner silent for this many heartbeats is presumed dead.
MISSED_BEATS: Final = 3
# Ledger rows this many heartbeats old with no journal row are settled by the sweep (younger
# ones may belong to a job another process admitted a moment ago and is journaling now).
SWEEP_GRACE_BEATS: Final = 4
MIN_SWEEP_GRACE: Final = 2.0


def new_owner_id() -> str:
    """This process, as the journal and `shard_owners` name it (no secret in it)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Shards(Protocol):
    """The gateway shards this process runs (the Discord client knows them once connected)."""

    def shard_ids(self) -> list[int]: ...

    def shard_count(self) -> int: ...


class JobRecovery:
    def __init__(
        self,
        lifecycle: JobLifecycle,
        displays: DisplayRebuilder,
        shards: Shards,
        *,
        journal: JobJournal,
        owners: ShardOwners,
        ledger: UsageLedger,
        owner_id: str,
        heartbeat_interval: float,
        clock: WallClock = utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.lifecycle = lifecycle
        self.displays = displays
        self.shards = shards
        self.journal = journal
        self.owners = owners
        self.ledger = ledger
        self.owner_id = owner_id
        self.heartbeat_interval = heartbeat_interval
        self._clock = clock
        self._sleep = sleep
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.taken_back: list[int] = []  # job ids, for tests and the log
        self.settled_delivered: list[int] = []  # posted before the stop: only their end recorded
        self.settled_by_sweep: list[int] = []
        self.done = asyncio.Event()  # the start-up take-back and sweep have run

    @property
    def stale_after(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.heartbeat_interval * MISSED_BEATS)

    def shard_ids(self) -> list[int]:
        return sorted(self.shards.shard_ids()) or [0]

    def ready(self) -> None:
        """The gateway is ready (first time only): claim shards, take jobs back, sweep."""
        if self._started:
            return
        self._started = True
        self._spawn(self._start(), "job-recovery")
        self._spawn(self._beat(), "shard-heartbeat")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        try:
            await self._until_done(lambda: self.owners.claim(self.shard_ids(), self.owner_id),
                                   "claiming shards")
            await self._until_done(self.take_back, "taking back unfinished jobs")
            await self._until_done(self.sweep, "settling lost ledger rows")
        finally:
            self.done.set()

    async def _until_done(self, step: Callable[[], Awaitable[object]], doing: str) -> None:
        """Retry a start-up step through a database outage (logged once)."""
        outage = self.lifecycle.outage
        delay = 0.25
        while True:
            try:
                await step()
            except Exception as error:
                outage.failed(error, doing)
                await self._sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            outage.succeeded()
            return

    async def _beat(self) -> None:
        outage = self.lifecycle.outage
        while True:
            await self._sleep(self.heartbeat_interval)
            try:
                kept = await self.owners.heartbeat(self.shard_ids(), self.owner_id)
            except Exception as error:
                outage.failed(error, "renewing the shard heartbeat")
                continue
            outage.succeeded()
            lost = set(self.shard_ids()) - kept
            if lost:  # another process claimed them (two processes configured alike?)
                log.warning("shards %s are claimed by another process; claiming them back",
                            sorted(lost))
                with contextlib.suppress(Exception):
                    await self.owners.claim(lost, self.owner_id)

    # ---- taking jobs back --------------------------------------------------------------------

    async def take_back(self) -> list[int]:
        mine = set(self.shard_ids())
        count = self.shards.shard_count() or 1
        taken: list[int] = []
        for entry in await self.journal.entries():
            if entry.job_id in self.lifecycle.jobs or entry.job_id in self.taken_back:
                continue  # running here
            if shard_of(entry.guild_id, count) not in mine:
                continue  # another process's shard: it takes its own jobs back
            if entry.state is JobStage.DELIVERED:
                await self._settle_delivered(entry)
                continue
            expired = entry.interaction_at is not None and (
                self._clock() - entry.interaction_at > self.displays.token_lifetime)
            # A token past its lifetime is of no use: it leaves the database now.
            await self.journal.update(entry.job_id, owner_id=self.owner_id, forget_token=expired)
            stored = await self.ledger.get(entry.job_id)
            self.taken_back.append(entry.job_id)
            taken.append(entry.job_id)
            self._resume(entry, stored)
        if taken:
            log.info("took back %d unfinished jobs after a restart: %s", len(taken), taken)
        return taken

    async def _settle_delivered(self, entry: JournalEntry) -> None:
        """Its result is on Discord already: record its end, and leave Discord alone."""
        await self.journal.settle(entry.job_id, JobStatus.SUCCEEDED, task_id=entry.task_id)
        self.settled_delivered.append(entry.job_id)
        log.info("job %s was delivered before the restart: settled, not posted again",
                 entry.job_id)

    def _resume(self, entry: JournalEntry, stored: LedgerEntry | None) -> None:
        started_at = stored.created_at if stored is not None else (
            entry.created_at or self._clock())
        size = None
        if stored is not None:
            with contextlib.suppress(InvalidSizeError):
                size = parse_size(stored.size)
        request = JobRequest(
            guild_id=entry.guild_id,
            channel_id=entry.channel_id or None,
            user_id=entry.user_id,
            prompt=stored.prompt if stored is not None else "",
            size=size or parse_size("1024*1024"),
            user_name=entry.user_name,
            channel_is_nsfw=entry.channel_is_nsfw,
            reroll_of=stored.reroll_of if stored is not None else None,
            kind=_kind_of(entry),
        )
        age = max(0.0, (self._clock() - started_at).total_seconds())
        job = ActiveJob(
            job_id=entry.job_id,
            request=request,
            display=self.displays.rebuild(entry, request, started_at),
            started_monotonic=self.lifecycle.collaborators.clock() - age,
            journaled=True,
            resumed=entry,
            parent_url=entry.parent_url,
        )
        why = _why_not_resumable(entry, stored, size is not None)
        if why is None:
            self.lifecycle.launch(job)
        else:
            self.lifecycle.stop_unresumable(job, why)

    # ---- the sweep -----------------------------------------------------------------------------

    async def sweep(self) -> list[int]:
        """Settle active ledger rows that no journal row covers (refunded: nobody can deliver
        them). Rows younger than the grace may be a live process's job being journaled now."""
        grace = max(MIN_SWEEP_GRACE, self.heartbeat_interval * SWEEP_GRACE_BEATS)
        cutoff = self._clock() - dt.timedelta(seconds=grace)
        lost = await self.journal.unjournaled_active(cutoff)
        for job_id in lost:
            stored = await self.ledger.get(job_id)
            # Novita had a submitted one: refunded to the member, but it stays in spend.
            at_novita = stored is not None and stored.status is JobStatus.SUBMITTED
            await self.journal.settle(
                job_id, JobStatus.FAILED, error="lost: the process stopped before journaling it",
                billed=at_novita,
            )
        if lost:
            log.warning("settled %d ledger rows no process holds (refunded): %s", len(lost), lost)
        self.settled_by_sweep.extend(lost)
        return lost


def _why_not_resumable(
    entry: JournalEntry, stored: LedgerEntry | None, size_known: bool
) -> str | None:
    if stored is None or stored.status not in ACTIVE:
        return "its ledger row is gone or already closed"
    if not size_known:
        return "its size is no longer valid"
    if entry.state is JobStage.SUBMITTING:
        return "a submit may have been on its way when the process stopped"
    if entry.state is JobStage.SUBMITTED and entry.task_id is None:
        return "its task id was not recorded"
    if _kind_of(entry) is JobKind.EDIT and entry.task_id is None:
        return "an edit not yet sent cannot be sent again (its input image is not kept)"
    return None


def _kind_of(entry: JournalEntry) -> JobKind:
    """The kind of a journaled job (a kind written by a newer release reads as a generation)."""
    try:
        return JobKind(entry.kind)
    except ValueError:
        return JobKind.GENERATE
