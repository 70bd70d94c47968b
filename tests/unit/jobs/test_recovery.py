"""Taking jobs back after a restart, and the start-up sweep (`bot.jobs.recovery`), against the
real journal and ledger, a fake display and a fake Novita: no Discord anywhere."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bot.jobs.model import JobRequest, JobStage, JobStatus, shard_of
from bot.jobs.recovery import MIN_SWEEP_GRACE, JobRecovery
from bot.storage.database import Database
from bot.storage.repositories.journal import JournalEntry
from fakes.clock import ManualClock, ManualUtcClock
from tests.unit.jobs.lifecycle_support import (
    CHANNEL,
    FakeDisplay,
    Harness,
    StalledClient,
    lifecycle_over,
)
from tests.unit.jobs.test_engine import FakeClient

OTHER_SHARD_GUILD = 1 << 22  # shard 1 of 2


class Rebuilt:
    """Displays rebuilt from journal rows, kept per job id for the test to read."""

    token_lifetime = dt.timedelta(minutes=15)

    def __init__(self) -> None:
        self.displays: dict[int, FakeDisplay] = {}
        self.requests: dict[int, JobRequest] = {}

    def rebuild(
        self, entry: JournalEntry, request: JobRequest, started_at: dt.datetime
    ) -> FakeDisplay:
        self.requests[entry.job_id] = request
        return self.displays.setdefault(entry.job_id, FakeDisplay())


class TwoShardsRunningShardZero:
    def shard_ids(self) -> list[int]:
        return [0]

    def shard_count(self) -> int:
        return 2


def recovery_for(h: Harness, displays: Rebuilt, wall: ManualUtcClock) -> JobRecovery:
    return JobRecovery(
        h.lifecycle, displays, TwoShardsRunningShardZero(),
        journal=h.repositories.journal, owners=h.repositories.shard_owners,
        ledger=h.repositories.ledger, owner_id="this-process", heartbeat_interval=3600.0,
        clock=wall,
    )


async def journal(h: Harness, job_id: int, guild_id: int, **fields: object) -> None:
    entry = JournalEntry(job_id=job_id, owner_id="dead-process", shard_id=0,
                         channel_id=CHANNEL, user_id=30, guild_id=guild_id)
    await h.repositories.journal.record_many([dataclasses.replace(entry, **fields)])


async def test_take_back_polls_submitted_jobs_and_refunds_a_submit_in_doubt(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    clock = ManualClock(start=500.0)
    client = FakeClient(clock, finish_after=20.0)
    client.submitted_at = clock() - 10.0  # before the restart
    async with lifecycle_over(database, client, clock, utc_clock) as h:
        submitted, _ = await h.admit("a lighthouse")
        in_doubt, _ = await h.admit("a harbour")
        elsewhere, _ = await h.admit("a ship")
        await h.repositories.ledger.mark_submitted(submitted, "task-1")
        await journal(h, submitted, 10, task_id="task-1", state=JobStage.SUBMITTED)
        await journal(h, in_doubt, 10, state=JobStage.SUBMITTING)
        await journal(h, elsewhere, OTHER_SHARD_GUILD)
        assert shard_of(OTHER_SHARD_GUILD, 2) == 1
        displays = Rebuilt()
        recovery = recovery_for(h, displays, utc_clock)

        assert await recovery.take_back() == [submitted, in_doubt]
        await h.lifecycle.jobs.wait_idle()

        assert client.submitted_at == 490.0  # polled again, never submitted twice
        assert displays.requests[submitted].prompt == "a lighthouse"  # from the ledger
        assert displays.displays[submitted].calls == ["end_progress", "deliver"]
        assert await h.status(submitted) is JobStatus.SUCCEEDED
        assert displays.displays[in_doubt].calls == ["stopped_by_restart"]
        assert await h.status(in_doubt) is JobStatus.REFUNDED
        assert await h.journal_entry(in_doubt) is None
        assert elsewhere not in displays.displays  # its shard's process takes it back
        assert await h.journal_entry(elsewhere) is not None
        assert await recovery.take_back() == []  # nothing twice


async def test_an_expired_token_leaves_the_database_when_its_job_is_taken_back(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    clock = ManualClock()
    client = StalledClient(clock)
    client.submitted_at = clock()
    async with lifecycle_over(database, client, clock, utc_clock) as h:
        job_id, _ = await h.admit()
        await h.repositories.ledger.mark_submitted(job_id, "task-1")
        await journal(h, job_id, 10, task_id="task-1", state=JobStage.SUBMITTED,
                      interaction_token="old-token",
                      interaction_at=utc_clock() - dt.timedelta(minutes=16))
        await recovery_for(h, Rebuilt(), utc_clock).take_back()
        await client.polled.wait()  # running again, polling Novita

        entry = await h.journal_entry(job_id)
        assert entry is not None and entry.owner_id == "this-process"
        assert entry.interaction_token is None  # of no use past 15 minutes: forgotten


async def test_start_up_claims_shards_takes_back_and_sweeps_unjournaled_rows(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    clock = ManualClock()
    async with lifecycle_over(database, FakeClient(clock), clock, utc_clock) as h:
        lost, _ = await h.admit("admitted, never journaled")
        utc_clock.advance(seconds=3600 * 4 + MIN_SWEEP_GRACE)  # past the sweep's grace
        young, _ = await h.admit("admitted a moment ago by a live process")
        recovery = recovery_for(h, Rebuilt(), utc_clock)
        recovery.ready()
        await recovery.done.wait()
        await recovery.stop()

        assert recovery.settled_by_sweep == [lost]
        assert await h.status(lost) is JobStatus.FAILED  # refunded: nobody can deliver it
        assert await h.status(young) is JobStatus.RESERVED
        assert await h.repositories.shard_owners.heartbeat([0], "this-process") == {0}
