"""The job journal on both backends: it follows the ledger, batches, and shard owners."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from bot.jobs.model import JobStage, JobStatus, shard_of
from bot.storage import (
    JobJournal,
    JournalEntry,
    UsageLedger,
)
from bot.storage.database import Database
from bot.storage.repositories.journal import ShardOwners

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock


SNOWFLAKE = 1_234_567_890_123_456_789  # Discord ids need all 64 bits


async def _reserve(database: Database, ledger: UsageLedger, when: dt.datetime) -> int:
    async with database.write() as conn:
        return await ledger.insert(
            conn, guild_id=SNOWFLAKE, channel_id=2, user_id=3, prompt="fox", size="1024*1024",
            created_at=when,
        )


async def test_job_journal_follows_the_ledger(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    journal = JobJournal(database, ledger, utc_clock)
    first = await _reserve(database, ledger, utc_clock.now)
    second = await _reserve(database, ledger, utc_clock.now)
    await journal.record_many([JournalEntry(
        first, "owner-a", shard_of(SNOWFLAKE, 4), 2, 3, guild_id=SNOWFLAKE, user_name="ann",
        application_id=SNOWFLAKE, interaction_id=SNOWFLAKE, interaction_token="secret-token",
        interaction_at=utc_clock.now,
    )])
    await journal.record_many([JournalEntry(second, "owner-a", 0, 2, 3)])
    utc_clock.advance(seconds=1)
    assert await journal.update(first, state=JobStage.SUBMITTING, message_id=77)
    assert not await journal.update(999, state=JobStage.WAITING)
    await journal.mark_submitted_many([(first, "t-1")])

    entry = await journal.get(first)
    assert entry is not None
    assert (entry.state, entry.task_id, entry.message_id, entry.shard_id) == (
        JobStage.SUBMITTED, "t-1", 77, (SNOWFLAKE >> 22) % 4)
    assert entry.interaction_token == "secret-token" and "secret-token" not in repr(entry)
    assert entry.interaction_id == SNOWFLAKE and entry.updated_at == utc_clock.now
    stored = await ledger.get(first)
    assert stored is not None and stored.status is JobStatus.SUBMITTED and stored.task_id == "t-1"
    assert [e.job_id for e in await journal.entries()] == [first, second]

    # Settling records the outcome and forgets the row (token included) in one transaction.
    assert await journal.settle(first, JobStatus.SUCCEEDED, timings={"total": 3.0})
    assert not await journal.settle(first, JobStatus.SUCCEEDED)  # repeating is harmless
    assert await journal.get(first) is None
    stored = await ledger.get(first)
    assert stored is not None and stored.status is JobStatus.SUCCEEDED

    # The sweep finds active rows that no journal row covers, once they are old enough.
    orphan = await _reserve(database, ledger, utc_clock.now - dt.timedelta(minutes=5))
    assert await journal.unjournaled_active(utc_clock.now - dt.timedelta(minutes=1)) == [orphan]


async def test_job_journal_records_a_batch_in_one_transaction_or_none_of_it(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    journal = JobJournal(database, ledger, utc_clock)
    jobs = [await _reserve(database, ledger, utc_clock.now) for _ in range(3)]
    await journal.record_many([])
    await journal.record_many([
        JournalEntry(job, "owner-a", 0, 2, 3, user_name=f"m{job}") for job in jobs[:2]])
    assert [(e.job_id, e.user_name) for e in await journal.entries()] == [
        (jobs[0], f"m{jobs[0]}"), (jobs[1], f"m{jobs[1]}")]
    # A batch with one bad entry (a job already journaled) leaves no row of it behind.
    with pytest.raises(Exception):  # noqa: B017  the backend's IntegrityError
        await journal.record_many([
            JournalEntry(jobs[2], "owner-a", 0, 2, 3), JournalEntry(jobs[0], "owner-a", 0, 2, 3)])
    assert [e.job_id for e in await journal.entries()] == jobs[:2]

    utc_clock.advance(seconds=5)
    await journal.mark_submitting_many([])
    await journal.mark_submitting_many([jobs[1], 999, jobs[1]])  # unknown ids change nothing
    states = {e.job_id: (e.state, e.updated_at) for e in await journal.entries()}
    assert states[jobs[1]] == (JobStage.SUBMITTING, utc_clock.now)
    assert states[jobs[0]][0] is not JobStage.SUBMITTING


async def test_shard_owners_heartbeat_and_takeover(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    owners = ShardOwners(database, utc_clock)
    await owners.claim([0, 1], "a")
    utc_clock.advance(seconds=10)
    await owners.claim([1], "b")  # b now runs shard 1 (a died, or a rolling restart)
    assert await owners.heartbeat([0, 1], "a") == {0}
    assert await owners.live(dt.timedelta(seconds=30)) == {0: "a", 1: "b"}
    utc_clock.advance(seconds=25)
    assert await owners.heartbeat([0], "a") == {0}
    utc_clock.advance(seconds=10)
    assert await owners.live(dt.timedelta(seconds=30)) == {0: "a"}  # b stopped beating
