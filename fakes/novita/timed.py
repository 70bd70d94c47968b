"""A Novita without sockets: each task is QUEUED, PROCESSING, then SUCCEED at planned times on an
injected clock. Drives the real `JobEngine` on virtual time (planner tests, `poll_bench --virtual`).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.imaging import ImageSize
from bot.novita.models import GeneratedImage, TaskResult, TaskStatus

# (size, index of the task) → (seconds queued at Novita, seconds generating)
Plan = Callable[[ImageSize, int], tuple[float, float]]


class TimedUpstream:
    """Fits the engine's `TaskClient`; records every poll so delays can be read exactly."""

    def __init__(self, clock: Callable[[], float], plan: Plan) -> None:
        self.clock = clock
        self.plan = plan
        self.tasks: dict[str, tuple[float, float, float]] = {}  # id → (submitted, start, finish)
        self.polls: dict[str, list[float]] = {}  # id → clock time of each poll

    async def submit(self, prompt: str, size: ImageSize) -> str:
        queue, generation = self.plan(size, len(self.tasks))
        task_id = f"task-{len(self.tasks)}"
        now = self.clock()
        self.tasks[task_id] = (now, now + queue, now + queue + generation)
        self.polls[task_id] = []
        return task_id

    async def get_task(self, task_id: str) -> TaskResult:
        _, start, finish = self.tasks[task_id]
        now = self.clock()
        self.polls[task_id].append(now)
        if now < start:
            status = TaskStatus.QUEUED
        elif now < finish:
            status = TaskStatus.PROCESSING
        else:
            status = TaskStatus.SUCCEED
        done = status is TaskStatus.SUCCEED
        images = [{"image_url": f"https://img.example/{task_id}.jpeg", "image_type": "jpeg"}]
        return TaskResult.from_json({
            "task": {"task_id": task_id, "status": status.value, "eta": 0, "progress_percent": 0},
            "images": images if done else [],
        })

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        return b"\xff\xd8jpeg"

    def detection_delay(self, task_id: str) -> float:
        """The first poll that saw SUCCEED minus the moment the task finished."""
        _, _, finish = self.tasks[task_id]
        seen = next(t for t in self.polls[task_id] if t >= finish)
        return seen - finish
