"""A scripted Novita task on a fake clock, for driving the real `JobEngine` without sockets."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from bot.imaging import ImageSize
from bot.jobs.durations import DurationModel
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.polling import AdaptivePlanner, PollStrategy
from bot.novita.models import GeneratedImage, TaskResult, TaskStatus


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class ScriptedUpstream:
    """Each submit takes the next (queue seconds, generation seconds) from the script."""

    def __init__(self, clock: FakeClock, script: Sequence[tuple[float, float]]) -> None:
        self.clock = clock
        self.script = list(script)
        self.tasks: dict[str, tuple[float, float, float]] = {}  # id → (submitted, start, finish)
        self.polls: dict[str, list[float]] = {}

    async def submit(self, prompt: str, size: ImageSize) -> str:
        queue, generation = self.script[len(self.tasks)]
        task_id = f"task-{len(self.tasks)}"
        now = self.clock()
        self.tasks[task_id] = (now, now + queue, now + queue + generation)
        self.polls[task_id] = []
        return task_id

    async def get_task(self, task_id: str) -> TaskResult:
        submitted, start, finish = self.tasks[task_id]
        now = self.clock()
        self.polls[task_id].append(now - submitted)
        if now < start:
            status = TaskStatus.QUEUED
        elif now < finish:
            status = TaskStatus.PROCESSING
        else:
            status = TaskStatus.SUCCEED
        done = status is TaskStatus.SUCCEED
        images = [{"image_url": "https://img.example/1.jpeg", "image_type": "jpeg"}] if done else []
        body = {"task": {"task_id": task_id, "status": status.value, "eta": 0,
                         "progress_percent": 0}, "images": images}
        return TaskResult.from_json(body)

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        return b"\xff\xd8jpeg"

    def delay(self, task_id: str) -> float:
        """Detection delay: first poll that saw SUCCEED minus the finish."""
        submitted, _, finish = self.tasks[task_id]
        return submitted + self.polls[task_id][-1] - finish


async def run_sequentially(
    script: Sequence[tuple[float, float]],
    size: ImageSize | None = None,
    *,
    model: DurationModel | None = None,
    planner: PollStrategy | None = None,
    seed: int = 1,
) -> tuple[list[tuple[int, float]], DurationModel]:
    """Run the scripted jobs one after another; returns (polls, detection delay) per job."""
    clock = FakeClock()
    upstream = ScriptedUpstream(clock, script)
    model = model if model is not None else DurationModel()
    engine = JobEngine(upstream, JobSettings(deadline_seconds=900.0), model,
                       planner=planner or AdaptivePlanner(), clock=clock, sleep=clock.sleep,
                       rng=random.Random(seed))
    outcomes = []
    for _ in script:
        result = await engine.run("a fox", size or ImageSize(1024, 1024))
        outcomes.append((result.polls, upstream.delay(result.task_id)))
    return outcomes, model
