"""The engine against a scripted client on a fake clock: replies that cannot be read, unknown
statuses that read as final, and the split between waiting for a task and fetching its image."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from bot.imaging import ImageSize
from bot.jobs.engine import MAX_UNREADABLE_REPLIES, JobEngine, JobSettings
from bot.jobs.model import JobStage
from bot.jobs.progress import ProgressUpdate
from bot.novita import errors
from bot.novita.errors import (
    JobTimeoutError,
    MalformedResponseError,
    NovitaError,
    TaskStoppedError,
    UnreadableRepliesError,
)
from bot.novita.models import GeneratedImage, TaskResult
from bot.wording.messages import describe_error
from fakes.clock import ManualClock

SIZE = ImageSize(512, 512)
IMAGE = b"image-bytes"

Reply = Callable[[], TaskResult]


def reply(status: str, *, image: bool = False) -> TaskResult:
    images = [{"image_url": "https://img.example/1.jpeg"}] if image else []
    return TaskResult.from_json({"task": {"task_id": "t-1", "status": status}, "images": images})


def malformed() -> TaskResult:
    raise MalformedResponseError("task-result reply is not JSON", task_id="t-1")


class ScriptedClient:
    """Each poll gets the next step of `script`; the last step repeats."""

    def __init__(self, script: list[Reply]) -> None:
        self.script = script
        self.polls = 0
        self.downloads = 0

    async def submit(self, prompt: str, size: ImageSize) -> str:
        return "t-1"

    async def get_task(self, task_id: str) -> TaskResult:
        step = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        return step()

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        self.downloads += 1
        return IMAGE


def engine_for(client: ScriptedClient, deadline: float = 300.0) -> tuple[JobEngine, ManualClock]:
    clock = ManualClock()
    engine = JobEngine(client, JobSettings(deadline_seconds=deadline), clock=clock,
                       sleep=clock.sleep, rng=random.Random(1))
    return engine, clock


def running() -> TaskResult:
    return reply("TASK_STATUS_PROCESSING")


def succeeded() -> TaskResult:
    return reply("TASK_STATUS_SUCCEED", image=True)


async def test_three_unreadable_replies_in_a_row_end_the_job() -> None:
    client = ScriptedClient([malformed])
    engine, clock = engine_for(client)
    with pytest.raises(UnreadableRepliesError) as info:
        await engine.run("a fox", SIZE)
    assert client.polls == MAX_UNREADABLE_REPLIES == 3
    assert info.value.task_id == "t-1" and not info.value.retryable
    assert clock() < 60.0  # not the 5-minute deadline
    assert client.downloads == 0


async def test_unreadable_replies_that_are_not_in_a_row_are_survived() -> None:
    client = ScriptedClient([malformed, malformed, running, malformed, malformed, succeeded])
    engine, _ = engine_for(client)
    result = await engine.run("a fox", SIZE)
    assert result.image == IMAGE and client.polls == 6


@pytest.mark.parametrize(
    "status",
    ["TASK_STATUS_CANCELED", "TASK_STATUS_CANCELLED", "TASK_STATUS_EXPIRED",
     "TASK_STATUS_ERROR", "TASK_STATUS_FAILURE", "task_status_aborted"],
)
async def test_an_unknown_status_that_reads_as_final_ends_the_job_at_once(status: str) -> None:
    client = ScriptedClient([running, lambda: reply(status)])
    engine, clock = engine_for(client)
    with pytest.raises(TaskStoppedError) as info:
        await engine.run("a fox", SIZE)
    assert client.polls == 2 and info.value.reason == status
    assert isinstance(info.value, errors.TaskFailedError)  # callers treating failures alike
    assert clock() < 60.0


async def test_an_unknown_status_that_does_not_read_as_final_keeps_polling() -> None:
    client = ScriptedClient([lambda: reply("TASK_STATUS_WARMING_UP")])
    engine, _ = engine_for(client, deadline=40.0)
    with pytest.raises(JobTimeoutError):
        await engine.run("a fox", SIZE)
    assert client.polls > 3


async def test_run_until_ready_stops_before_the_download_and_fetch_image_finishes() -> None:
    client = ScriptedClient([running, succeeded])
    engine, _ = engine_for(client)
    updates: list[ProgressUpdate] = []
    ready = await engine.run_until_ready("a fox", SIZE, updates.append)
    assert client.downloads == 0 and ready.task_id == "t-1"
    assert updates[-1].stage is JobStage.DOWNLOADING
    result = await engine.fetch_image(ready, updates.append)
    assert result.image == IMAGE and client.downloads == 1 and result.polls == 2
    assert updates[-1].stage is JobStage.DONE and updates[-1].percent == 100.0
    assert result.timings.total_seconds >= result.timings.wait_seconds


async def test_fetch_image_still_respects_the_job_deadline() -> None:
    client = ScriptedClient([succeeded])
    engine, clock = engine_for(client, deadline=30.0)
    ready = await engine.run_until_ready("a fox", SIZE)
    clock.now = ready.deadline + 1
    with pytest.raises(JobTimeoutError):
        await engine.fetch_image(ready)
    assert client.downloads == 0


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (errors.InvalidImageError("truncated"), "could not be read"),
        (errors.ImageHostRefusedError("127.0.0.1"), "does not fetch from"),
        (errors.ImageHostTooSlowError("slow"), "too slow"),
        (errors.UnreadableRepliesError("3 in a row"), "could not read"),
        (errors.TaskStoppedError("x", reason="TASK_STATUS_CANCELED"), "stopped this job"),
    ],
)
def test_each_new_failure_has_a_short_friendly_sentence(exc: NovitaError, says: str) -> None:
    text = describe_error(exc)
    assert text is not None and says in text
    assert "127.0.0.1" not in text and "CANCELED" not in text  # details stay in the log
