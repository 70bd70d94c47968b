"""The job journal: what a restarted process needs to pick up jobs that were in flight.

One row per job, written when the job is admitted and updated as it moves on. Only a table and
simple operations for now; resuming from it is the job engine's business.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import RowMapping, delete, select, update

from bot.clock import Clock, utc_now
from bot.storage.database import Database
from bot.storage.schema import job_journal


class JobState(enum.StrEnum):
    QUEUED = "queued"  # admitted, waiting for an upstream slot
    SUBMITTED = "submitted"  # Novita has a task id: resumable by polling it
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED: Final = (JobState.QUEUED, JobState.SUBMITTED)


@dataclass(frozen=True)
class JournalEntry:
    job_id: str
    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    size: str
    state: JobState = JobState.QUEUED
    ticket_id: int | None = None
    interaction_id: int | None = None
    message_id: int | None = None
    task_id: str | None = None
    created_at: dt.datetime | None = None  # set by the journal
    updated_at: dt.datetime | None = None


class JobJournal:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def record(self, entry: JournalEntry) -> None:
        now = self._clock()
        async with self._db.write() as conn:
            await conn.execute(
                job_journal.insert().values(
                    job_id=entry.job_id,
                    ticket_id=entry.ticket_id,
                    guild_id=entry.guild_id,
                    channel_id=entry.channel_id,
                    user_id=entry.user_id,
                    interaction_id=entry.interaction_id,
                    message_id=entry.message_id,
                    prompt=entry.prompt,
                    size=entry.size,
                    task_id=entry.task_id,
                    state=str(entry.state),
                    created_at=now,
                    updated_at=now,
                )
            )

    async def update(
        self,
        job_id: str,
        *,
        state: JobState | None = None,
        task_id: str | None = None,
        message_id: int | None = None,
    ) -> bool:
        """Change what is given; False if there is no such job."""
        values: dict[str, Any] = {"updated_at": self._clock()}
        if state is not None:
            values["state"] = str(state)
        if task_id is not None:
            values["task_id"] = task_id
        if message_id is not None:
            values["message_id"] = message_id
        async with self._db.write() as conn:
            result = await conn.execute(
                update(job_journal).where(job_journal.c.job_id == job_id).values(**values)
            )
        return bool(result.rowcount)

    async def get(self, job_id: str) -> JournalEntry | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(job_journal).where(job_journal.c.job_id == job_id))
            ).mappings().first()
        return None if row is None else _entry(row)

    async def unfinished(self) -> list[JournalEntry]:
        """Jobs still queued or submitted, oldest first (what to resume after a restart)."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(job_journal)
                .where(job_journal.c.state.in_([str(s) for s in UNFINISHED]))
                .order_by(job_journal.c.created_at, job_journal.c.job_id)
            )
            return [_entry(row) for row in rows.mappings()]

    async def prune(self, finished_before: dt.datetime) -> int:
        """Forget finished jobs last touched before the given time; returns how many."""
        async with self._db.write() as conn:
            result = await conn.execute(
                delete(job_journal).where(
                    job_journal.c.state.not_in([str(s) for s in UNFINISHED]),
                    job_journal.c.updated_at < finished_before,
                )
            )
        return int(result.rowcount)


def _entry(row: RowMapping) -> JournalEntry:
    return JournalEntry(
        job_id=row["job_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        prompt=row["prompt"],
        size=row["size"],
        state=JobState(row["state"]),
        ticket_id=row["ticket_id"],
        interaction_id=row["interaction_id"],
        message_id=row["message_id"],
        task_id=row["task_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
