"""The mock Novita's tasks: how long each one takes, and what its status is at any moment.

A task never runs anything. At submit it gets planned times (`processing_at`, `succeeded_at`) drawn
from the size-dependent duration model; every poll then computes the status from the clock. That
makes thousands of concurrent tasks cost one dict entry each, and makes tests deterministic with
an injected clock (`ManualClock`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final

from fakes.novita.faults import Fault

QUEUED: Final = "TASK_STATUS_QUEUED"
PROCESSING: Final = "TASK_STATUS_PROCESSING"
SUCCEED: Final = "TASK_STATUS_SUCCEED"
FAILED: Final = "TASK_STATUS_FAILED"
UNKNOWN: Final = "TASK_STATUS_UNKNOWN"  # in Novita's JS SDK enum, not in the docs

# Realistic Qwen-Image latencies (third-party reports say 10–30 s), anchored by pixel count and
# interpolated linearly between (and beyond) the anchors.
DEFAULT_SECONDS_BY_PIXELS: Final[tuple[tuple[int, float], ...]] = (
    (512 * 512, 12.0),
    (1024 * 1024, 20.0),
    (1536 * 1536, 30.0),
)
_MIN_MEAN_SECONDS: Final = 1.0
_MIN_SPREAD_FACTOR: Final = 0.25  # a gaussian draw never makes a task take under 25 % of the mean


@dataclass(frozen=True)
class TimingModel:
    """How long tasks take. Every duration is multiplied by `time_scale`."""

    time_scale: float = 1.0
    seconds_by_pixels: tuple[tuple[int, float], ...] = DEFAULT_SECONDS_BY_PIXELS
    spread: float = 0.15  # relative standard deviation of the gaussian around the mean
    queue_probability: float = 0.1  # share of tasks that sit in QUEUED first
    queue_wait_range: tuple[float, float] = (2.0, 8.0)  # seconds, uniform
    fixed_duration: float | None = None  # processing seconds for every task (no spread)

    def mean_seconds(self, width: int, height: int) -> float:
        """Mean processing time (unscaled) for a size, by pixel count."""
        anchors = sorted(self.seconds_by_pixels)
        if len(anchors) == 1:
            return max(_MIN_MEAN_SECONDS, anchors[0][1])
        pixels = width * height
        # Pick the segment that contains `pixels`, or the nearest end segment to extrapolate.
        index = 0
        while index < len(anchors) - 2 and pixels > anchors[index + 1][0]:
            index += 1
        (p0, s0), (p1, s1) = anchors[index], anchors[index + 1]
        seconds = s0 + (s1 - s0) * (pixels - p0) / (p1 - p0)
        return max(_MIN_MEAN_SECONDS, seconds)

    def plan(self, rng: random.Random, width: int, height: int) -> tuple[float, float]:
        """(queue wait, processing time) in scaled seconds. Always draws the same number of random
        values so one seed gives one sequence whatever the options."""
        queued = rng.random() < self.queue_probability
        low, high = self.queue_wait_range
        queue_wait = rng.uniform(low, high)
        factor = max(_MIN_SPREAD_FACTOR, rng.gauss(1.0, self.spread))
        if self.fixed_duration is not None:
            run = self.fixed_duration
        else:
            run = self.mean_seconds(width, height) * factor
        return (queue_wait if queued else 0.0) * self.time_scale, run * self.time_scale


@dataclass
class MockTask:
    """One submitted task. Times are on the mock's clock (monotonic seconds).

    `succeeded_at` is the exact moment the status flips to its terminal value: SUCCEED, or FAILED
    for a task planned to fail; `math.inf` for a task that never finishes. A poll at or after it
    sees the terminal status. `detected_at` is when a poll first *answered* that status, so
    `detected_at - succeeded_at` is the client's detection delay.
    """

    task_id: str
    prompt: str
    width: int
    height: int
    created_at: float
    processing_at: float
    succeeded_at: float
    faults: frozenset[Fault] = frozenset()
    failure_reason: str = ""
    oversized_bytes: int = 0
    task_type: str = "QWEN_IMAGE_TEXT_TO_IMAGE"
    image_type: str = "jpeg"  # jpeg, png or webp: what the image URL serves
    source_image: bytes | None = field(default=None, repr=False)  # an edit's input picture
    poll_times: list[float] = field(default_factory=list)
    detected_at: float | None = None
    downloads: int = 0
    # (request arrived, last byte handed to the socket) per successful download
    download_times: list[tuple[float, float]] = field(default_factory=list)

    @property
    def size(self) -> str:
        return f"{self.width}*{self.height}"

    @property
    def polls(self) -> int:
        return len(self.poll_times)

    @property
    def finished_at(self) -> float:
        """Alias of `succeeded_at` that reads better for failed tasks."""
        return self.succeeded_at

    @property
    def will_fail(self) -> bool:
        return Fault.FAILED in self.faults

    def status_at(self, now: float) -> str:
        """The wire status a poll at `now` answers."""
        if now < self.processing_at:
            return QUEUED
        if now < self.succeeded_at:
            return UNKNOWN if Fault.UNKNOWN_STATUS in self.faults else PROCESSING
        return FAILED if self.will_fail else SUCCEED

    def progress_at(self, now: float) -> tuple[int, float]:
        """(progress_percent, eta seconds) for mocks configured to report them."""
        status = self.status_at(now)
        if status in (SUCCEED, FAILED):
            return 100, 0.0
        if status == QUEUED or math.isinf(self.succeeded_at):
            return 0, 0.0
        span = self.succeeded_at - self.processing_at
        done = (now - self.processing_at) / span if span > 0 else 1.0
        return min(99, int(done * 100)), round(max(0.0, self.succeeded_at - now), 2)
