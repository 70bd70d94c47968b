"""New jobs' journal writes are group-committed, and each job still waits for its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.clock import utc_now
from bot.storage.database import Database
from bot.storage.journal import JobJournal, JobState, JournalEntry
from bot.storage.journal_writes import JournalWrites
from bot.storage.ledger import UsageLedger


class CountingJournal(JobJournal):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.transactions: list[str] = []

    async def record_many(self, entries: Sequence[JournalEntry]) -> None:
        self.transactions.append(f"record {len(entries)}")
        await super().record_many(entries)

    async def mark_submitting_many(self, job_ids: Sequence[int]) -> None:
        self.transactions.append(f"submitting {len(job_ids)}")
        await super().mark_submitting_many(job_ids)


async def _reserve(database: Database, ledger: UsageLedger, n: int) -> list[int]:
    async with database.write() as conn:
        return [
            await ledger.insert(conn, guild_id=1, channel_id=2, user_id=100 + k,
                                prompt="fox", size="1024*1024", created_at=utc_now())
            for k in range(n)
        ]


async def test_a_burst_of_jobs_is_journaled_in_one_transaction_per_step(
    database: Database,
) -> None:
    journal = CountingJournal(database)
    writes = JournalWrites(journal)
    jobs = await _reserve(database, UsageLedger(database), 20)
    try:
        await asyncio.gather(*(writes.record(JournalEntry(job, "me", 0, 2, 3)) for job in jobs))
        await asyncio.gather(*(writes.mark_submitting(job) for job in jobs))
        # Twenty jobs that reach the same step together share one transaction.
        assert journal.transactions == ["record 20", "submitting 20"]
        entries = await journal.entries()
        assert sorted(e.job_id for e in entries) == sorted(jobs)
        assert {e.state for e in entries} == {JobState.SUBMITTING}
    finally:
        await writes.close()
