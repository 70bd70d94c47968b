"""Scripted jobs through the real `JobEngine` on a manual clock, without sockets."""

from __future__ import annotations

import random
from collections.abc import Sequence

from bot.imaging import ImageSize
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.polling.durations import DurationModel
from bot.jobs.polling.planner import AdaptivePlanner, PollStrategy
from fakes.clock import ManualClock
from fakes.novita.timed import TimedUpstream


async def run_sequentially(
    script: Sequence[tuple[float, float]],
    size: ImageSize | None = None,
    *,
    model: DurationModel | None = None,
    planner: PollStrategy | None = None,
    seed: int = 1,
) -> tuple[list[tuple[int, float]], DurationModel]:
    """Run the scripted jobs one after another; returns (polls, detection delay) per job."""
    clock = ManualClock(start=1000.0)
    upstream = TimedUpstream(clock, lambda _size, index: script[index])
    model = model if model is not None else DurationModel()
    engine = JobEngine(upstream, JobSettings(deadline_seconds=900.0), model,
                       planner=planner or AdaptivePlanner(), clock=clock, sleep=clock.sleep,
                       rng=random.Random(seed))
    outcomes = []
    for _ in script:
        result = await engine.run("a fox", size or ImageSize(1024, 1024))
        outcomes.append((result.polls, upstream.detection_delay(result.task_id)))
    return outcomes, model
