"""The job journal: what a restarted process needs to take back the jobs that were in flight.

One row per admitted job, keyed by the ledger's job id, written when the job starts and deleted
in the same transaction that records how it ended (`settle`), so a row exists exactly while the
ledger row is unfinished. It names the process that runs the job (`owner_id`) and the Discord
shard its guild belongs to; the Novita task once submitted; and the interaction to edit.

The interaction token is a secret: it never appears in a repr or a log line, and it leaves the
database with the row when the job ends.

States (`bot.jobs.model.JobStage`): `waiting` (admitted, not yet sent to Novita: safe to submit
again), `submitting` (a submit may be on its way: never submitted twice, so such a job is stopped
after a crash, refunded to its member but counted in spend), `submitted` (Novita has the task:
resumed by polling it again) and `delivered` (the result is posted: a restart only records its
end). A job is never submitted before its `submitting` mark is durable, and the `delivered` mark
is the first write after its post.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import RowMapping, case, delete, select, update

from bot.clock import WallClock, utc_now
from bot.jobs.model import JobOutcome, JobStage
from bot.storage.database import Database
from bot.storage.repositories.ledger import ACTIVE, UsageLedger
from bot.storage.schema import job_journal, shard_owners, usage_ledger


@dataclass(frozen=True)
class JournalEntry:
    job_id: int
    owner_id: str
    shard_id: int
    channel_id: int
    user_id: int
    guild_id: int | None = None
    user_name: str = ""
    channel_is_nsfw: bool = False
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)  # secret
    interaction_at: dt.datetime | None = None
    filesize_limit: int | None = None
    message_id: int | None = None
    task_id: str | None = None
    state: JobStage = JobStage.WAITING
    created_at: dt.datetime | None = None  # set by the journal
    updated_at: dt.datetime | None = None
    # `bot.jobs.model.JobKind`: an edit resumes on the edit duration model, and one not yet
    # submitted cannot be resubmitted (its input image is not kept).
    kind: str = "generate"
    # An Edit's or Remix's parent result (its jump link), shown again on a resumed job's result.
    parent_url: str | None = None


class JobJournal:
    def __init__(self, db: Database, ledger: UsageLedger, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock
        self._ledger = ledger  # settled in the same transaction as the journal row

    async def record_many(self, entries: Sequence[JournalEntry]) -> None:
        """Journal jobs in one transaction (a burst's new jobs are group-committed)."""
        if not entries:
            return
        now = self._clock()
        async with self._db.write() as conn:
            await conn.execute(job_journal.insert(), [_row(entry, now) for entry in entries])

    async def update(
        self,
        job_id: int,
        *,
        state: JobStage | None = None,
        message_id: int | None = None,
        owner_id: str | None = None,
        forget_token: bool = False,
    ) -> bool:
        """Change what is given; False if there is no such job."""
        values: dict[str, Any] = {"updated_at": self._clock()}
        if state is not None:
            values["state"] = str(state)
        if message_id is not None:
            values["message_id"] = message_id
        if owner_id is not None:
            values["owner_id"] = owner_id
        if forget_token:
            values["interaction_token"] = None
        async with self._db.write() as conn:
            result = await conn.execute(
                update(job_journal).where(job_journal.c.job_id == job_id).values(**values)
            )
        return bool(result.rowcount)

    async def mark_submitting_many(self, job_ids: Sequence[int]) -> set[int]:
        """From here a submit may be on its way (a restart polls or reports, never resubmits);
        one statement for every job that reached this point meanwhile. Returns the jobs now
        marked: one missing has no journal row (its record never landed) and must not be sent."""
        if not job_ids:
            return set()
        async with self._db.write() as conn:
            marked = await conn.execute(
                update(job_journal)
                .where(job_journal.c.job_id.in_(set(job_ids)),
                       job_journal.c.state == str(JobStage.WAITING))
                .values(state=str(JobStage.SUBMITTING), updated_at=self._clock())
                .returning(job_journal.c.job_id)
            )
            return {int(job_id) for (job_id,) in marked}

    async def mark_delivered_many(self, job_ids: Sequence[int]) -> None:
        """These jobs' results are posted: a restart records their end and never posts again."""
        if not job_ids:
            return
        async with self._db.write() as conn:
            await conn.execute(
                update(job_journal)
                .where(job_journal.c.job_id.in_(set(job_ids)))
                .values(state=str(JobStage.DELIVERED), updated_at=self._clock())
            )

    async def mark_submitted_many(self, tasks: Sequence[tuple[int, str]]) -> None:
        """Novita has these jobs' tasks: record each in the journal and the ledger, all in one
        transaction (safe to repeat: the ledger moves only from `reserved`, and a settled job
        has no journal row; a `delivered` mark that landed first stays)."""
        if not tasks:
            return
        now = self._clock()
        delivered = str(JobStage.DELIVERED)
        state = case((job_journal.c.state == delivered, delivered),
                     else_=str(JobStage.SUBMITTED))
        async with self._db.write() as conn:
            for job_id, task_id in tasks:
                await self._ledger.mark_submitted_in(conn, job_id, task_id)
                await conn.execute(
                    update(job_journal)
                    .where(job_journal.c.job_id == job_id)
                    .values(task_id=task_id, state=state, updated_at=now)
                )

    async def settle(
        self,
        job_id: int,
        outcome: JobOutcome,
        *,
        task_id: str | None = None,
        error: str | None = None,
        timings: Mapping[str, float] | None = None,
        billed: bool = False,
    ) -> bool:
        """Record how the job ended and forget its journal row, in one transaction.

        `billed`: its submit was sent, so it counts in spend (`UsageLedger.finish`). Returns
        whether the ledger row changed (False: it was already closed). Safe to repeat.
        """
        async with self._db.write() as conn:
            changed = await self._ledger.finish_in(
                conn, job_id, outcome, task_id=task_id, error=error, timings=timings,
                billed=billed,
            )
            await conn.execute(delete(job_journal).where(job_journal.c.job_id == job_id))
        return changed

    async def get(self, job_id: int) -> JournalEntry | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(job_journal).where(job_journal.c.job_id == job_id))
            ).mappings().first()
        return None if row is None else _entry(row)

    async def entries(self) -> list[JournalEntry]:
        """Every unfinished job, oldest first."""
        async with self._db.read() as conn:
            rows = await conn.execute(select(job_journal).order_by(job_journal.c.job_id))
            return [_entry(row) for row in rows.mappings()]

    async def unjournaled_active(self, created_before: dt.datetime) -> list[int]:
        """Ledger rows still reserved or submitted that no journal row covers (a process died
        before journaling them, or the journal was written by an older release)."""
        t = usage_ledger
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(t.c.id)
                .where(
                    t.c.status.in_(sorted(str(s) for s in ACTIVE)),
                    t.c.created_at < created_before,
                    t.c.id.not_in(select(job_journal.c.job_id)),
                )
                .order_by(t.c.id)
            )
            return [int(job_id) for (job_id,) in rows]


def _entry(row: RowMapping) -> JournalEntry:
    return JournalEntry(
        job_id=int(row["job_id"]),
        owner_id=row["owner_id"],
        shard_id=int(row["shard_id"]),
        channel_id=int(row["channel_id"]),
        user_id=int(row["user_id"]),
        guild_id=row["guild_id"],
        user_name=row["user_name"] or "",
        channel_is_nsfw=bool(row["channel_is_nsfw"]),
        application_id=row["application_id"],
        interaction_id=row["interaction_id"],
        interaction_token=row["interaction_token"],
        interaction_at=row["interaction_at"],
        filesize_limit=row["filesize_limit"],
        message_id=row["message_id"],
        task_id=row["task_id"],
        state=JobStage(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        kind=row["kind"] or "generate",
        parent_url=row["parent_url"],
    )


def _row(entry: JournalEntry, now: dt.datetime) -> dict[str, Any]:
    return {
        "job_id": entry.job_id,
        "owner_id": entry.owner_id,
        "shard_id": entry.shard_id,
        "application_id": entry.application_id,
        "interaction_id": entry.interaction_id,
        "interaction_token": entry.interaction_token,
        "interaction_at": entry.interaction_at,
        "guild_id": entry.guild_id,
        "channel_id": entry.channel_id,
        "user_id": entry.user_id,
        "user_name": entry.user_name[:100],
        "channel_is_nsfw": entry.channel_is_nsfw,
        "filesize_limit": entry.filesize_limit,
        "message_id": entry.message_id,
        "task_id": entry.task_id,
        "state": str(entry.state),
        "kind": entry.kind,
        "created_at": entry.created_at or now,
        "updated_at": now,
        "parent_url": entry.parent_url,
    }


class ShardOwners:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, shard_ids: Iterable[int], owner_id: str) -> None:
        """This process now runs these shards (whoever ran them before)."""
        now = self._clock()
        async with self._db.write(["shard-owners"]) as conn:
            for shard_id in sorted(set(shard_ids)):
                await self._db.upsert(
                    conn,
                    shard_owners,
                    {"shard_id": shard_id},
                    {"owner_id": owner_id, "heartbeat_at": now},
                )

    async def heartbeat(self, shard_ids: Iterable[int], owner_id: str) -> set[int]:
        """Refresh our claim; returns the shards still ours (another process may have taken
        one over, e.g. during a rolling restart)."""
        wanted = sorted(set(shard_ids))
        async with self._db.write() as conn:
            await conn.execute(
                update(shard_owners)
                .where(shard_owners.c.shard_id.in_(wanted), shard_owners.c.owner_id == owner_id)
                .values(heartbeat_at=self._clock())
            )
            rows = await conn.execute(
                select(shard_owners.c.shard_id).where(
                    shard_owners.c.shard_id.in_(wanted), shard_owners.c.owner_id == owner_id
                )
            )
            return {int(shard_id) for (shard_id,) in rows}

    async def live(self, stale_after: dt.timedelta) -> dict[int, str]:
        """Shard id → owner, for owners whose heartbeat is fresher than `stale_after`."""
        since = self._clock() - stale_after
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(shard_owners.c.shard_id, shard_owners.c.owner_id).where(
                    shard_owners.c.heartbeat_at > since
                )
            )
            return {int(shard_id): str(owner) for shard_id, owner in rows}
