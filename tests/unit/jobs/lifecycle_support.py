"""A job lifecycle over a test database, with a fake display and a fake Novita on a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.clock import WallClock, utc_now
from bot.config import Settings
from bot.imaging import ImageSize
from bot.jobs.active import ReplyRecord
from bot.jobs.edits import EditRunner
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.fair_queue import JobSlots, UnboundedSlots
from bot.jobs.lifecycle import JobCollaborators, JobLifecycle
from bot.jobs.model import JobOutcome, JobRequest, JobStatus
from bot.jobs.progress import JobResult, ProgressUpdate
from bot.limits.admission import AdmissionService
from bot.limits.policy import LimitPolicy
from bot.novita.models import TaskResult
from bot.observability.metrics import BotMetrics
from bot.storage.database import Database
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.repositories.journal import JournalEntry
from bot.storage.repository_set import Repositories
from fakes.clock import ManualClock
from tests.unit.jobs.test_engine import FakeClient

GUILD, CHANNEL, ALICE = 10, 20, 30
SIZE = ImageSize(1024, 1024)
UNLIMITED = Settings(user_generations_per_window=0, user_max_concurrent_jobs=0, user_daily_quota=0)
REPLY = ReplyRecord(application_id=1, interaction_id=2, token="secret-token",
                    interaction_at=None, filesize_limit=8 << 20)


@dataclass
class FakeDisplay:
    """Records what the lifecycle told it, in order (`calls`), and the progress it was shown."""

    outcome: JobOutcome = JobStatus.SUCCEEDED
    calls: list[str] = field(default_factory=list)
    updates: list[ProgressUpdate] = field(default_factory=list)
    results: list[JobResult] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    cancel_counted: bool | None = None  # what the cancel said: counted or refunded

    async def progress(self, update: ProgressUpdate) -> None:
        self.updates.append(update)

    async def end_progress(self) -> None:
        self.calls.append("end_progress")

    async def deliver(self, result: JobResult) -> JobOutcome:
        self.calls.append("deliver")
        self.results.append(result)
        return self.outcome

    async def failed(self, error: Exception) -> None:
        self.calls.append("failed")
        self.errors.append(error)

    async def cancelled(self, by_name: str, *, counted: bool) -> None:
        self.calls.append(f"cancelled by {by_name}")
        self.cancel_counted = counted

    async def restarting(self) -> None:
        self.calls.append("restarting")

    async def interrupted(self) -> None:
        self.calls.append("interrupted")

    async def stopped_by_restart(self) -> None:
        self.calls.append("stopped_by_restart")


@dataclass
class StalledClient(FakeClient):
    """Novita that took the task and then never answers a poll (until the job is stopped)."""

    polled: asyncio.Event = field(default_factory=asyncio.Event)

    async def get_task(self, task_id: str) -> TaskResult:
        self.polled.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class HeldSlots:
    """A fair queue whose every slot is taken: a job waits here until it is stopped."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()

    @asynccontextmanager
    async def slot(
        self, user_id: int, on_position: Callable[[int], Awaitable[None]]
    ) -> AsyncIterator[None]:
        self.asked.set()
        await asyncio.Event().wait()
        yield


@dataclass
class Harness:
    lifecycle: JobLifecycle
    repositories: Repositories
    admissions: AdmissionService
    client: FakeClient
    clock: ManualClock

    async def admit(self, prompt: str = "a fox") -> tuple[int, JobRequest]:
        request = JobRequest(GUILD, CHANNEL, ALICE, prompt, SIZE, user_name="alice")
        admission = await self.admissions.admit(request)
        assert admission.job_id is not None
        return admission.job_id, request

    async def journal_entry(self, job_id: int) -> JournalEntry | None:
        return await self.repositories.journal.get(job_id)

    async def status(self, job_id: int) -> JobStatus:
        entry = await self.repositories.ledger.get(job_id)
        assert entry is not None
        return entry.status


@asynccontextmanager
async def lifecycle_over(
    database: Database,
    client: FakeClient,
    clock: ManualClock,
    wall: WallClock = utc_now,
    slots: JobSlots | None = None,
) -> AsyncIterator[Harness]:
    """The real collaborators (journal, outbox, engine) over `database`, as composition wires
    them, with Novita faked on `clock` (and the date from `wall`); every job starts at once
    unless `slots` says otherwise."""
    repositories = Repositories.over(database, wall)
    admissions = AdmissionService(
        repositories, LimitPolicy.from_settings(UNLIMITED), clock=wall)
    engine = JobEngine(client, JobSettings(), clock=clock, sleep=clock.sleep)
    lifecycle = JobLifecycle(JobCollaborators.over(
        repositories.journal, WriteOutbox(), engine=engine, edits=EditRunner(engine, client),
        slots=slots if slots is not None else UnboundedSlots(), metrics=BotMetrics(),
        owner_id="this-process", shard_count=lambda: 1, clock=clock,
    ))
    try:
        yield Harness(lifecycle, repositories, admissions, client, clock)
    finally:
        await lifecycle.stop_jobs()
        await lifecycle.close()
        await admissions.close()
