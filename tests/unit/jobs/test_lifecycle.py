"""A job's life (`bot.jobs.lifecycle`) against a fake display, a fake Novita on a manual clock and
the real journal and ledger: no Discord anywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.jobs.active import ActiveJob
from bot.jobs.model import JobStage, JobStatus
from bot.novita.errors import TaskFailedError
from bot.novita.models import TaskStatus
from bot.storage.database import Database
from bot.storage.repositories.journal import JournalEntry
from fakes.clock import ManualClock
from tests.unit.jobs.lifecycle_support import (
    ALICE,
    CHANNEL,
    GUILD,
    REPLY,
    FakeDisplay,
    Harness,
    HeldSlots,
    StalledClient,
    lifecycle_over,
)
from tests.unit.jobs.test_engine import JPEG, FakeClient


@asynccontextmanager
async def stalled_job(database: Database) -> AsyncIterator[tuple[Harness, int, FakeDisplay]]:
    """A started job that Novita has taken and never finishes: running until it is stopped."""
    clock = ManualClock()
    client = StalledClient(clock)
    async with lifecycle_over(database, client, clock) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        h.lifecycle.start(job_id, request, display, REPLY)
        await client.polled.wait()
        yield h, job_id, display

async def test_a_job_is_journaled_run_delivered_and_settled(database: Database) -> None:
    clock = ManualClock(start=100.0)
    async with lifecycle_over(database, FakeClient(clock, finish_after=20.0), clock) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        job = h.lifecycle.start(job_id, request, display, REPLY)
        assert job_id in h.lifecycle.jobs
        await h.lifecycle.jobs.wait_idle()

        assert job.journaled  # the journal had it while it ran
        assert display.calls == ["end_progress", "deliver"]  # no progress after the result
        (result,) = display.results
        assert (result.task_id, result.image) == ("task-1", JPEG)
        stages = [update.stage for update in display.updates]
        assert stages[0] is JobStage.SUBMITTING and stages[-1] is JobStage.DONE
        assert await h.status(job_id) is JobStatus.SUCCEEDED
        assert await h.journal_entry(job_id) is None  # settled with the ledger row
        entry = await h.repositories.ledger.get(job_id)
        assert entry is not None and entry.task_id == "task-1"
        assert not h.lifecycle.jobs


async def test_a_failed_task_is_shown_and_refunded(database: Database) -> None:
    clock = ManualClock()
    client = FakeClient(clock, finish_after=5.0, final=TaskStatus.FAILED, reason="nope")
    async with lifecycle_over(database, client, clock) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        h.lifecycle.start(job_id, request, display, REPLY)
        await h.lifecycle.jobs.wait_idle()

        assert display.calls == ["end_progress", "failed"]
        assert isinstance(display.errors[0], TaskFailedError)
        assert await h.status(job_id) is JobStatus.FAILED  # does not count against the member
        entry = await h.repositories.ledger.get(job_id)
        assert entry is not None and entry.task_id == "task-1"  # the failed task is named
        assert await h.journal_entry(job_id) is None


async def test_cancel_stops_the_job_and_says_who(database: Database) -> None:
    async with stalled_job(database) as (h, job_id, display):
        assert h.lifecycle.jobs.cancel(job_id, "alice")
        await h.lifecycle.jobs.wait_idle()

        assert display.calls == ["end_progress", "cancelled by alice"]
        assert await h.status(job_id) is JobStatus.CANCELLED
        assert await h.journal_entry(job_id) is None
        assert not h.lifecycle.jobs.cancel(job_id, "alice")  # gone: nothing to cancel


async def test_shutdown_leaves_a_running_job_journaled_for_the_next_start(
    database: Database,
) -> None:
    async with stalled_job(database) as (h, job_id, display):
        await h.lifecycle.stop_jobs()
        await h.lifecycle.close()  # the task id still lands through the outbox

        assert display.calls == ["end_progress", "restarting"]
        assert not h.lifecycle.jobs
        entry = await h.journal_entry(job_id)
        assert entry is not None and entry.owner_id == "this-process"
        assert (entry.state, entry.task_id) == (JobStage.SUBMITTED, "task-1")
        assert entry.interaction_token == "secret-token"  # the next start answers through it
        assert await h.status(job_id) is JobStatus.SUBMITTED  # not settled: it will follow


async def test_a_resumed_job_is_polled_again_never_resubmitted(database: Database) -> None:
    clock = ManualClock(start=1_000.0)
    client = FakeClient(clock, finish_after=20.0)
    client.submitted_at = clock() - 15.0  # Novita took it before the restart
    async with lifecycle_over(database, client, clock) as h:
        job_id, request = await h.admit()
        await h.repositories.journal.record_many([JournalEntry(
            job_id=job_id, owner_id="dead-process", shard_id=0, channel_id=CHANNEL,
            user_id=ALICE, guild_id=GUILD, task_id="task-1", state=JobStage.SUBMITTED,
        )])
        resumed = await h.journal_entry(job_id)
        display = FakeDisplay()
        job = ActiveJob(job_id=job_id, request=request, display=display,
                        started_monotonic=clock() - 15.0, journaled=True, resumed=resumed)
        h.lifecycle.launch(job)
        await h.lifecycle.jobs.wait_idle()

        assert client.submitted_at == 985.0  # never submitted again
        assert client.poll_times and min(client.poll_times) >= 1_000.0
        assert display.calls == ["end_progress", "deliver"]
        assert display.updates[0].stage is not JobStage.SUBMITTING
        assert await h.status(job_id) is JobStatus.SUCCEEDED
        assert await h.journal_entry(job_id) is None


async def test_a_job_the_journal_missed_is_refunded_on_shutdown(database: Database) -> None:
    """Not journaled (the database did not take the row): nothing can take it back, so shutdown
    says it was interrupted and refunds it. (Such a job never gets past its "submitting" mark,
    so shutdown finds it waiting for a slot.)"""
    clock = ManualClock()
    client = StalledClient(clock)
    slots = HeldSlots()
    async with lifecycle_over(database, client, clock, slots=slots) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        job = ActiveJob(job_id=job_id, request=request, display=display,
                        started_monotonic=clock())
        h.lifecycle.launch(job)  # no journal row to write
        await slots.asked.wait()
        await h.lifecycle.stop_jobs()

        assert display.calls == ["end_progress", "interrupted"]
        assert await h.status(job_id) is JobStatus.FAILED  # refunded
