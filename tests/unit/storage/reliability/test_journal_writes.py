"""New jobs' journal writes are group-committed, and each job still waits for its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from bot.clock import utc_now
from bot.jobs.model import JobStage, JobStatus
from bot.storage.database import Database
from bot.storage.reliability.journal_writes import JournalWrites, SubmittedTasks
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.repositories.journal import JobJournal, JournalEntry
from bot.storage.repositories.ledger import UsageLedger


class CountingJournal(JobJournal):
    def __init__(self, database: Database) -> None:
        super().__init__(database, UsageLedger(database))
        self.transactions: list[str] = []

    async def record_many(self, entries: Sequence[JournalEntry]) -> None:
        self.transactions.append(f"record {len(entries)}")
        await super().record_many(entries)

    async def mark_submitting_many(self, job_ids: Sequence[int]) -> set[int]:
        self.transactions.append(f"submitting {len(job_ids)}")
        return await super().mark_submitting_many(job_ids)

    async def mark_submitted_many(self, tasks: Sequence[tuple[int, str]]) -> None:
        self.transactions.append(f"submitted {len(tasks)}")
        if self.during_write is not None:
            self.during_write, run = None, self.during_write
            run()
        if self.outages:
            self.outages -= 1
            raise ConnectionError("database away")
        await super().mark_submitted_many(tasks)

    async def settle(self, job_id: int, *args: object, **kwargs: object) -> bool:
        self.transactions.append(f"settle {job_id}")
        return await super().settle(job_id, *args, **kwargs)  # type: ignore[arg-type]

    outages = 0  # how many of the next task-id writes fail as if the database were away
    during_write: Callable[[], object] | None = None  # runs once, while a write is under way


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
        assert {e.state for e in entries} == {JobStage.SUBMITTING}
    finally:
        await writes.close()


async def test_task_ids_gathered_meanwhile_land_together_and_before_each_job_ends(
    database: Database,
) -> None:
    journal = CountingJournal(database)
    outbox = WriteOutbox(initial_backoff=0.01)
    submitted = SubmittedTasks(journal, outbox)
    ledger = UsageLedger(database)
    jobs = await _reserve(database, ledger, 5)
    await journal.record_many([JournalEntry(job, "me", 0, 2, 3) for job in jobs])
    journal.transactions.clear()

    # Ids that gather before the outbox gets to them go in one transaction, retried whole
    # through an outage, and land before the end of a job queued after them.
    journal.outages = 2
    for job in jobs[:3]:
        submitted.add(job, f"task-{job}")
    outbox.put("end", lambda: journal.settle(jobs[0], JobStatus.SUCCEEDED))
    assert await outbox.flush(5) == 0
    assert journal.transactions == ["submitted 3"] * 3 + [f"settle {jobs[0]}"]

    # An id added while a write is under way gets an item of its own, queued ahead of the end
    # its job queues afterwards.
    journal.transactions.clear()

    def another_job_is_submitted_and_ends() -> None:
        submitted.add(jobs[4], f"task-{jobs[4]}")
        outbox.put("end", lambda: journal.settle(jobs[4], JobStatus.SUCCEEDED))

    journal.during_write = another_job_is_submitted_and_ends
    submitted.add(jobs[3], f"task-{jobs[3]}")
    assert await outbox.flush(5) == 0
    assert journal.transactions == ["submitted 1", "submitted 1", f"settle {jobs[4]}"]
    for job in jobs[1:4]:
        row = await ledger.get(job)
        assert row is not None and row.status is JobStatus.SUBMITTED
        assert row.task_id == f"task-{job}"
    entries = {e.job_id: e for e in await journal.entries()}
    assert sorted(entries) == jobs[1:4]
    assert {(e.task_id, e.state) for e in entries.values()} == {
        (f"task-{job}", JobStage.SUBMITTED) for job in jobs[1:4]}
    await outbox.close()
