"""JobEngine against an in-test fake client on a fake clock: no sockets, no real waiting."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bot.config import Secret
from bot.imaging import ImageSize
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.model import JobStage
from bot.jobs.polling.durations import DurationModel
from bot.jobs.polling.planner import FixedInterval
from bot.jobs.progress import ProgressUpdate
from bot.novita.client import NovitaClient
from bot.novita.errors import (
    AuthenticationError,
    ImageUnavailableError,
    JobTimeoutError,
    NovitaError,
    TaskFailedError,
    UpstreamUnavailableError,
)
from bot.novita.models import GeneratedImage, TaskResult, TaskStatus
from bot.novita.retry import RetryPolicy
from fakes.clock import ManualClock, ScaledClock
from fakes.novita.faults import Endpoint, Fault
from fakes.novita.server import MockNovita, MockNovitaConfig

SIZE = ImageSize(1024, 1024)
JPEG = b"\xff\xd8\xff\xe0fake-jpeg"


@dataclass
class FakeClient:
    """A task that is QUEUED for `queue_for`, PROCESSING until `finish_after`, then `final`."""

    clock: ManualClock
    finish_after: float = 20.0
    queue_for: float = 0.0
    final: TaskStatus = TaskStatus.SUCCEED
    running_status: str = TaskStatus.PROCESSING.value
    reason: str = ""
    images: int = 1
    eta: float = 0.0
    percent: float = 0.0
    poll_errors: dict[int, NovitaError] = field(default_factory=dict)  # 1-based poll number
    submitted_at: float | None = None
    poll_times: list[float] = field(default_factory=list)
    downloads: int = 0

    async def submit(self, prompt: str, size: ImageSize) -> str:
        self.submitted_at = self.clock()
        return "task-1"

    async def get_task(self, task_id: str) -> TaskResult:
        assert task_id == "task-1"
        self.poll_times.append(self.clock())
        error = self.poll_errors.get(len(self.poll_times))
        if error is not None:
            raise error
        assert self.submitted_at is not None
        age = self.clock() - self.submitted_at
        if age < self.queue_for:
            status = TaskStatus.QUEUED.value
        elif age < self.finish_after:
            status = self.running_status
        else:
            status = self.final.value
        done = status == TaskStatus.SUCCEED.value
        images = [
            {"image_url": f"https://img.example/{i}.jpeg", "image_type": "jpeg"}
            for i in range(self.images if done else 0)
        ]
        body = {
            "task": {"task_id": task_id, "status": status, "reason": self.reason,
                     "eta": 0 if done else self.eta,
                     "progress_percent": 0 if done else self.percent},
            "images": images,
        }
        return TaskResult.from_json(body)

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        self.downloads += 1
        return JPEG


def make_engine(
    client: FakeClient, clock: ManualClock, **settings: float
) -> tuple[JobEngine, DurationModel]:
    model = DurationModel()
    engine = JobEngine(
        client, JobSettings(**settings), model,
        clock=clock, sleep=clock.sleep, rng=random.Random(7),
    )
    return engine, model


def setup(**client_options: object) -> tuple[ManualClock, FakeClient]:
    clock = ManualClock(start=100.0)
    return clock, FakeClient(clock, **client_options)  # type: ignore[arg-type]


async def test_happy_path_returns_image_timings_and_calls_hooks() -> None:
    clock, client = setup(finish_after=20.0)
    engine, _ = make_engine(client, clock)
    updates: list[ProgressUpdate] = []
    submitted: list[str] = []

    async def on_submitted(task_id: str) -> None:
        submitted.append(task_id)

    result = await engine.run("a fox", SIZE, updates.append, on_submitted=on_submitted)

    assert result.image == JPEG and result.image_type == "jpeg"
    assert result.task_id == "task-1" and submitted == ["task-1"]
    assert result.polls == len(client.poll_times) and client.downloads == 1
    assert 20.0 <= result.timings.wait_seconds <= 21.0  # noticed within one dense gap
    # A fresh model does not trust the prior and explores (~1.7 s gaps); still far fewer than
    # the 40 polls of a 0.5 s poller. Warm-model efficiency: polling/test_planner.py.
    assert result.polls <= 14
    assert updates[0].stage is JobStage.SUBMITTING and updates[-1].stage is JobStage.DONE
    assert updates[-1].percent == 100.0


async def test_polls_respect_interval_bounds() -> None:
    clock, client = setup(finish_after=45.0)
    engine, _ = make_engine(client, clock, poll_min_interval=0.5, poll_max_interval=5.0)
    await engine.run("a fox", SIZE)
    gaps = [b - a for a, b in zip([client.submitted_at, *client.poll_times], client.poll_times,
                                  strict=False)]
    assert all(0.5 - 1e-9 <= gap <= 5.0 + 1e-9 for gap in gaps), gaps


async def test_progress_is_monotonic_estimated_and_never_100_before_done() -> None:
    clock, client = setup(finish_after=40.0)  # runs long past the learned 20 s
    engine, model = make_engine(client, clock)
    for _ in range(5):  # a settled model polls sparsely early on (a fresh one explores densely)
        model.observe(SIZE, 20.0)
    updates: list[ProgressUpdate] = []
    await engine.run("a fox", SIZE, updates.append)

    percents = [u.percent for u in updates]
    assert percents == sorted(percents)
    assert all(u.percent < 100 for u in updates[:-1])
    assert all(u.percent_is_estimate for u in updates[:-1] if u.stage is JobStage.GENERATING)
    assert max(u.percent for u in updates[:-1]) <= 99.0
    phases = [u.stage for u in updates]
    assert JobStage.GENERATING in phases
    assert phases.index(JobStage.DOWNLOADING) == len(phases) - 2
    # Progress keeps moving between sparse polls (ticks every 2 s).
    assert sum(1 for u in updates if u.stage is JobStage.GENERATING) > len(client.poll_times)


async def test_upstream_percent_and_eta_are_used_when_non_zero() -> None:
    clock, client = setup(finish_after=20.0, percent=42.0, eta=7.5)
    engine, _ = make_engine(client, clock)
    updates: list[ProgressUpdate] = []
    await engine.run("a fox", SIZE, updates.append)
    generating = [u for u in updates if u.stage is JobStage.GENERATING]
    assert generating and all(not u.percent_is_estimate for u in generating)
    assert all(u.percent == 42.0 for u in generating)
    assert all(u.eta_seconds == 7.5 for u in generating)


async def test_failed_task_raises_with_reason_and_task_id() -> None:
    clock, client = setup(finish_after=5.0, final=TaskStatus.FAILED, reason="out of memory")
    engine, _ = make_engine(client, clock)
    with pytest.raises(TaskFailedError) as caught:
        await engine.run("a fox", SIZE)
    assert caught.value.reason == "out of memory" and caught.value.task_id == "task-1"
    assert client.downloads == 0


async def test_succeed_without_images_is_image_unavailable() -> None:
    clock, client = setup(finish_after=3.0, images=0)
    engine, _ = make_engine(client, clock)
    with pytest.raises(ImageUnavailableError):
        await engine.run("a fox", SIZE)


async def test_deadline_stops_polling() -> None:
    clock, client = setup(finish_after=10_000.0)
    engine, _ = make_engine(client, clock, deadline_seconds=60.0)
    start = clock()
    with pytest.raises(JobTimeoutError) as caught:
        await engine.run("a fox", SIZE)
    assert caught.value.task_id == "task-1"
    assert clock() == pytest.approx(start + 60.0)
    assert all(t < start + 60.0 for t in client.poll_times)


async def test_unknown_status_keeps_polling_until_success() -> None:
    clock, client = setup(finish_after=15.0, running_status="TASK_STATUS_SOMETHING_NEW")
    engine, _ = make_engine(client, clock)
    updates: list[ProgressUpdate] = []
    result = await engine.run("a fox", SIZE, updates.append)
    assert result.image == JPEG
    assert any(u.stage is JobStage.GENERATING for u in updates)


async def test_unknown_status_forever_ends_at_deadline() -> None:
    clock, client = setup(finish_after=10_000.0, running_status="TASK_STATUS_WEIRD")
    engine, _ = make_engine(client, clock, deadline_seconds=30.0)
    with pytest.raises(JobTimeoutError):
        await engine.run("a fox", SIZE)


async def test_transient_poll_errors_are_survived() -> None:
    errors: dict[int, NovitaError] = {
        n: UpstreamUnavailableError("502", status=502, task_id="task-1") for n in (1, 2, 3)
    }
    clock, client = setup(finish_after=12.0, poll_errors=errors)
    engine, _ = make_engine(client, clock)
    result = await engine.run("a fox", SIZE)
    assert result.image == JPEG and len(client.poll_times) >= 4


async def test_transient_errors_until_deadline_time_out() -> None:
    clock, client = setup(finish_after=1.0)
    client.poll_errors = {n: UpstreamUnavailableError("503", status=503) for n in range(1, 500)}
    engine, _ = make_engine(client, clock, deadline_seconds=20.0)
    with pytest.raises(JobTimeoutError):
        await engine.run("a fox", SIZE)


async def test_permanent_poll_error_propagates_at_once() -> None:
    clock, client = setup(finish_after=12.0)
    client.poll_errors = {1: AuthenticationError("bad key", status=403)}
    engine, _ = make_engine(client, clock)
    with pytest.raises(AuthenticationError):
        await engine.run("a fox", SIZE)
    assert len(client.poll_times) == 1


@pytest.mark.timeout(10)
async def test_cancellation_stops_polling() -> None:
    clock, client = setup(finish_after=10_000.0)
    third_poll_slept = asyncio.Event()
    parked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        if len(client.poll_times) >= 3:
            third_poll_slept.set()
            await parked  # hold here until cancelled

    engine = JobEngine(client, JobSettings(), clock=clock, sleep=sleep, rng=random.Random(1))
    task = asyncio.create_task(engine.run("a fox", SIZE))
    await third_poll_slept.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(client.poll_times) == 3 and client.downloads == 0


async def test_progress_callback_errors_are_ignored() -> None:
    clock, client = setup(finish_after=8.0)
    engine, _ = make_engine(client, clock)
    calls = 0

    async def broken(update: ProgressUpdate) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("display broke")

    result = await engine.run("a fox", SIZE, broken)
    assert result.image == JPEG and calls >= 3


async def test_on_submitted_failure_does_not_lose_the_job() -> None:
    clock, client = setup(finish_after=8.0)
    engine, _ = make_engine(client, clock)

    async def journal(task_id: str) -> None:
        raise OSError("disk full")

    result = await engine.run("a fox", SIZE, on_submitted=journal)
    assert result.image == JPEG


async def test_resume_polls_without_submitting() -> None:
    clock, client = setup(finish_after=20.0)
    client.submitted_at = clock() - 15.0  # submitted before a restart
    engine, _ = make_engine(client, clock)
    ready = await engine.resume_until_ready("task-1", SIZE, started_ago=15.0)
    result = await engine.fetch_image(ready)
    assert result.image == JPEG
    assert client.poll_times[-1] - client.submitted_at >= 20.0
    assert result.timings.total_seconds == pytest.approx(clock() - client.submitted_at)


async def test_resume_after_deadline_fails_without_requests() -> None:
    clock, client = setup(finish_after=20.0)
    client.submitted_at = clock() - 400.0
    engine, _ = make_engine(client, clock, deadline_seconds=300.0)
    with pytest.raises(JobTimeoutError):
        await engine.resume_until_ready("task-1", SIZE, started_ago=400.0)
    assert client.poll_times == []


async def test_queue_then_processing_is_learned() -> None:
    clock, client = setup(finish_after=26.0, queue_for=6.0)
    engine, model = make_engine(client, clock, poll_max_interval=3.0)
    updates: list[ProgressUpdate] = []
    await engine.run("a fox", SIZE, updates.append)
    assert any(u.stage is JobStage.SUBMITTED for u in updates)
    learned = model.expected(SIZE)
    assert learned.observations == 1
    assert learned.queue_mean > 0.5  # moved up from the 0.5 s prior towards 6 s
    assert 18.0 < learned.generation_mean < 21.0  # ~20 s of generation after the queue


async def test_each_job_teaches_the_duration_model() -> None:
    clock, client = setup(finish_after=30.0)
    engine, model = make_engine(client, clock)
    for _ in range(6):
        client.poll_times.clear()
        await engine.run("a fox", SIZE)
    learned = model.expected(SIZE)
    assert learned.observations == 6
    assert abs(learned.generation_mean - 30.0) < 2.0


async def test_baseline_strategy_runs_through_the_same_engine() -> None:
    clock, client = setup(finish_after=10.0)
    engine = JobEngine(client, JobSettings(), planner=FixedInterval(0.5), clock=clock,
                       sleep=clock.sleep, rng=random.Random(1))
    result = await engine.run("a fox", SIZE)
    assert result.polls == 20  # 0.5, 1.0, … 10.0


# --- against the real mock Novita over loopback sockets ------------------------------------------

SCALE = 0.01  # a 20 s job takes 0.2 s


@contextlib.asynccontextmanager
async def mock_engine(
    **mock_options: object,
) -> AsyncIterator[tuple[JobEngine, MockNovita, NovitaClient]]:
    config = MockNovitaConfig(time_scale=SCALE, draw_prompt=False, **mock_options)  # type: ignore[arg-type]
    async with MockNovita(config) as mock, NovitaClient(
        Secret(config.api_key), mock.base_url, max_submits_per_minute=0,
        retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001),
        trusted_image_hosts=[mock.base_url.removeprefix("http://")],
    ) as client:
        clock = ScaledClock(SCALE)
        engine = JobEngine(client, JobSettings(deadline_seconds=120.0), clock=clock,
                           sleep=clock.sleep, rng=random.Random(3))
        yield engine, mock, client


@pytest.mark.timeout(30)
async def test_real_mock_concurrent_jobs_succeed_with_few_polls() -> None:
    sizes = [ImageSize(512, 512), ImageSize(768, 1024), ImageSize(1024, 1024),
             ImageSize(1024, 1536), ImageSize(1536, 1536)] * 2
    async with mock_engine(seed=5, queue_probability=0.0) as (engine, mock, client):
        # A warm model, as after a day of jobs: "few polls" is the settled behaviour; a fresh
        # model explores first (tests/unit/jobs/polling/test_planner.py).
        timing = mock.config.timing
        for size in sizes:
            engine.durations.observe(size, timing.mean_seconds(size.width, size.height))
        results = await asyncio.gather(*(engine.run("a red fox", size) for size in sizes))
        for result, size in zip(results, sizes, strict=True):
            assert result.image.startswith(b"\xff\xd8")
            task = mock.tasks[result.task_id]
            assert (task.width, task.height) == (size.width, size.height)
            assert task.detected_at is not None and task.detected_at >= task.succeeded_at
        # Detection delays are asserted on a virtual clock (test_planner.py); over real sockets
        # at this time scale a 10 ms hiccup of a busy machine reads as 1 s, so only polls count.
        assert client.stats.polls / len(sizes) < 12  # a 0.5 s poller would need ~40
        assert engine.durations.expected(ImageSize(1024, 1024)).observations == 2 + 2  # + taught


@pytest.mark.timeout(30)
async def test_real_mock_gateway_errors_while_polling_are_survived() -> None:
    async with mock_engine(seed=1, queue_probability=0.0) as (engine, mock, _):
        mock.faults.inject(Fault.BAD_GATEWAY, on=Endpoint.POLL, times=4)
        result = await engine.run("a red fox", ImageSize(512, 512))
        assert result.image.startswith(b"\xff\xd8")


@pytest.mark.timeout(30)
async def test_real_mock_failed_task_raises_task_failed() -> None:
    async with mock_engine(seed=1) as (engine, _, _):
        with pytest.raises(TaskFailedError) as caught:
            await engine.run("a red fox [mock:failed]", ImageSize(512, 512))
        assert caught.value.task_id


@pytest.mark.timeout(30)
async def test_real_mock_cancel_stops_requests() -> None:
    async with mock_engine(seed=1) as (engine, mock, client):
        submitted = asyncio.Event()
        task_ids: list[str] = []

        async def on_submitted(task_id: str) -> None:
            task_ids.append(task_id)
            submitted.set()

        three_polls = asyncio.Event()

        def on_progress(update: ProgressUpdate) -> None:
            if client.stats.polls >= 3:
                three_polls.set()

        job = asyncio.create_task(
            engine.run("a red fox [mock:never-finish]", ImageSize(512, 512), on_progress,
                       on_submitted=on_submitted))
        await submitted.wait()
        await three_polls.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        polls_at_cancel = len(mock.tasks[task_ids[0]].poll_times)
        await asyncio.sleep(20 * SCALE)  # several planned poll gaps
        assert len(mock.tasks[task_ids[0]].poll_times) <= polls_at_cancel + 1
        assert client.stats.polls <= polls_at_cancel + 1


def test_from_settings_runs_the_configured_poller_and_limits() -> None:
    """Every front end (the bot, `generate`) gets the same engine from the same settings."""
    from bot.config import load_settings
    from bot.jobs.polling.planner import AdaptivePlanner, FixedInterval

    environ = {"DISCORD_TOKEN": "t", "NOVITA_API_KEY": "k", "POLL_STRATEGY": "fixed:2.5"}
    settings = load_settings(env_file=None, environ=environ)
    engine = JobEngine.from_settings(FakeClient(ManualClock()), settings)  # type: ignore[arg-type]
    assert isinstance(engine.planner, FixedInterval) and engine.planner.interval == 2.5
    assert engine.settings == JobSettings.from_settings(settings)
    adaptive = load_settings(env_file=None, environ={**environ, "POLL_STRATEGY": "adaptive"})
    assert isinstance(JobEngine.from_settings(FakeClient(ManualClock()), adaptive).planner,  # type: ignore[arg-type]
                      AdaptivePlanner)


@pytest.mark.parametrize("turns", range(4))
async def test_a_cancel_arriving_as_a_poll_reply_completes_is_not_lost(turns: int) -> None:
    """Cancel (or shutdown) pressed just as a task-result reply arrives still stops the job:
    on Python 3.11 `asyncio.wait_for` returned the reply and dropped the cancel, so the job
    polled on to its deadline. Each `turns` lands the cancel at another step of the reply."""
    clock, client = setup(finish_after=20.0)
    engine, _ = make_engine(client, clock)
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def poll() -> str:
        return await reply

    bounded = asyncio.create_task(engine._bounded(poll(), clock() + 60.0, "task-1"))
    for _ in range(3):  # the poll is waiting for its reply
        await asyncio.sleep(0)
    reply.set_result("SUCCEED")
    for _ in range(turns):
        await asyncio.sleep(0)
    if bounded.done():  # the reply was fully taken in before the cancel: nothing to lose
        assert bounded.result() == "SUCCEED"
        return
    bounded.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded
