"""Taking jobs back after a restart, the shard heartbeat, and the start-up ledger sweep.

When the gateway is ready, the process claims the shards it runs (`shard_owners`) and keeps a
heartbeat. Then it takes back every journaled job of those shards that no live job here holds,
whoever started it (this process before a crash, or a dead process that ran the shard):

* `submitted`: Novita has the task: polled again and delivered (never submitted twice);
* `queued`: it never reached Novita: run again under its original admission (same ledger row);
* `submitting`: a submit may or may not have reached Novita: not repeated; the member is told
  "Stopped by a restart — not counted" and the row is refunded.

Delivery edits the original message through the stored interaction token while it is valid,
else posts in the channel mentioning only the requester (`StatusMessage`). Finally the sweep
settles ledger rows still reserved or submitted that no journal row covers (nobody can deliver
them), so every member's quota is exact again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import discord

from bot.imaging import InvalidSizeError, parse_size
from bot.interactions.active_jobs import ActiveJob
from bot.interactions.generation import GenerationService
from bot.interactions.transport.status_message import TOKEN_LIFETIME, StatusMessage
from bot.jobs.model import JobKind, JobRequest, JobStage, JobStatus, shard_of
from bot.storage.repositories.journal import JobJournal, JournalEntry, ShardOwners
from bot.storage.repositories.ledger import ACTIVE, LedgerEntry, UsageLedger
from bot.wording import presentation as ui

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


class JobRecovery:
    def __init__(
        self,
        client: discord.AutoShardedClient,
        generation: GenerationService,
        journal: JobJournal,
        owners: ShardOwners,
        ledger: UsageLedger,
        *,
        owner_id: str,
        heartbeat_interval: float,
    ) -> None:
        self.client = client
        self.generation = generation
        self.journal = journal
        self.owners = owners
        self.ledger = ledger
        self.owner_id = owner_id
        self.heartbeat_interval = heartbeat_interval
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.taken_back: list[int] = []  # job ids, for tests and the log
        self.settled_by_sweep: list[int] = []
        self.done = asyncio.Event()  # the start-up take-back and sweep have run

    @property
    def stale_after(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.heartbeat_interval * MISSED_BEATS)

    def shard_ids(self) -> list[int]:
        return sorted(self.client.shards) or [0]

    def shard_count(self) -> int:
        return self.client.shard_count or 1

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
        delay = 0.25
        while True:
            try:
                await step()
            except Exception as error:
                self.generation.outage.failed(error, doing)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.generation.outage.succeeded()
            return

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                kept = await self.owners.heartbeat(self.shard_ids(), self.owner_id)
            except Exception as error:
                self.generation.outage.failed(error, "renewing the shard heartbeat")
                continue
            self.generation.outage.succeeded()
            lost = set(self.shard_ids()) - kept
            if lost:  # another process claimed them (two processes configured alike?)
                log.warning("shards %s are claimed by another process; claiming them back",
                            sorted(lost))
                with contextlib.suppress(Exception):
                    await self.owners.claim(lost, self.owner_id)

    # ---- taking jobs back --------------------------------------------------------------------

    async def take_back(self) -> list[int]:
        mine = set(self.shard_ids())
        count = self.shard_count()
        taken: list[int] = []
        for entry in await self.journal.entries():
            if entry.job_id in self.generation.jobs or entry.job_id in self.taken_back:
                continue  # running here
            if shard_of(entry.guild_id, count) not in mine:
                continue  # another process's shard: it takes its own jobs back
            expired = entry.interaction_at is not None and (
                dt.datetime.now(dt.UTC) - entry.interaction_at > TOKEN_LIFETIME)
            # A token past its 15 minutes is of no use: it leaves the database now.
            await self.journal.update(entry.job_id, owner_id=self.owner_id, forget_token=expired)
            stored = await self.ledger.get(entry.job_id)
            self.taken_back.append(entry.job_id)
            taken.append(entry.job_id)
            self._resume(entry, stored)
        if taken:
            log.info("took back %d unfinished jobs after a restart: %s", len(taken), taken)
        return taken

    def _resume(self, entry: JournalEntry, stored: LedgerEntry | None) -> None:
        started_at = stored.created_at if stored is not None else (
            entry.created_at or dt.datetime.now(dt.UTC))
        size = None
        if stored is not None:
            with contextlib.suppress(InvalidSizeError):
                size = parse_size(stored.size)
        prompt = stored.prompt if stored is not None else ""
        request = JobRequest(
            guild_id=entry.guild_id,
            channel_id=entry.channel_id or None,
            user_id=entry.user_id,
            prompt=prompt,
            size=size or parse_size("1024*1024"),
            user_name=entry.user_name,
            channel_is_nsfw=entry.channel_is_nsfw,
            reroll_of=stored.reroll_of if stored is not None else None,
            kind=_kind(entry),
        )
        age = max(0.0, (dt.datetime.now(dt.UTC) - started_at).total_seconds())
        job = ActiveJob(
            job_id=entry.job_id,
            request=request,
            view=ui.JobView(
                prompt=prompt,
                size=request.size,
                requester_id=entry.user_id,
                requester_name=entry.user_name,
                started_at=started_at,
                parent=_parent(entry),
            ),
            status=StatusMessage.from_token(
                self.client,
                application_id=entry.application_id,
                token=entry.interaction_token,
                interaction_at=entry.interaction_at,
                channel_id=entry.channel_id,
                guild_id=entry.guild_id,
                requester_id=entry.user_id,
                filesize_limit=entry.filesize_limit,
            ),
            journaled=True,
            resumed=entry,
            started_monotonic=time.monotonic() - age,
        )
        why = _why_not_resumable(entry, stored, size is not None)
        if why is None:
            self.generation.launch(job)
            return
        self.generation.jobs.add(job)
        task = asyncio.create_task(self.generation.stop_unresumable(job, why),
                                   name=f"job-{job.job_id}")
        job.task = task
        task.add_done_callback(lambda _: self.generation.jobs.remove(job.job_id))

    # ---- the sweep -----------------------------------------------------------------------------

    async def sweep(self) -> list[int]:
        """Settle active ledger rows that no journal row covers (refunded: nobody can deliver
        them). Rows younger than the grace may be a live process's job being journaled now."""
        grace = max(MIN_SWEEP_GRACE, self.heartbeat_interval * SWEEP_GRACE_BEATS)
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=grace)
        lost = await self.journal.unjournaled_active(cutoff)
        for job_id in lost:
            await self.journal.settle(
                job_id, JobStatus.FAILED, error="lost: the process stopped before journaling it"
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
    if _kind(entry) is JobKind.EDIT and entry.task_id is None:
        return "an edit not yet sent cannot be sent again (its input image is not kept)"
    return None


def _parent(entry: JournalEntry) -> tuple[str, str] | None:
    """The "Edit of" / "Remix of" link the job showed before the restart."""
    if entry.parent_url is None:
        return None
    return (ui.REMIX_OF if _kind(entry) is JobKind.REMIX else ui.EDIT_OF), entry.parent_url


def _kind(entry: JournalEntry) -> JobKind:
    try:
        return JobKind(entry.kind)
    except ValueError:  # written by a newer release
        return JobKind.GENERATE
