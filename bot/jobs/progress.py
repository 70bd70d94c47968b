"""What a job reports while it runs, and what it returns when done."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.jobs.model import JobStage


@dataclass(frozen=True)
class ProgressUpdate:
    stage: JobStage
    percent: float                  # 0..100; never 100 before the image is downloaded
    percent_is_estimate: bool       # True when derived from learned durations, not upstream
    eta_seconds: float | None       # seconds from now until the image should be ready
    elapsed_seconds: float
    task_id: str | None = None
    queue_position: int | None = None  # 1-based place in the local queue while WAITING


ProgressCallback = Callable[[ProgressUpdate], Awaitable[None] | None]


@dataclass(frozen=True)
class JobTimings:
    submit_seconds: float     # from run() to task_id
    wait_seconds: float       # from task_id to SUCCEED noticed
    download_seconds: float
    total_seconds: float


@dataclass(frozen=True)
class JobResult:
    """A finished job's image, downloaded (the job itself knows its prompt and size)."""

    task_id: str
    image: bytes
    image_type: str           # "jpeg", "png", "webp" as sent by the image host
    nsfw_flagged: bool
    polls: int
    timings: JobTimings


