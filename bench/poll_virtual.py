"""Virtual-time runs for the poll benchmark: the same `JobEngine` and planners, no sockets.

The socket benchmark measures the real client over loopback, but on a loaded machine every
scheduling hiccup (5-150 ms) is multiplied by 1/time-scale and lands in every poller's figures.
Here the engine runs on a virtual clock against an in-process upstream that plans each task
exactly as the mock Novita does (same `TimingModel`, same seed, same duration multiplier), so
job k takes exactly as long as in the socket run and delays are exact. Nothing but the transport
differs, and a whole sweep takes seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Coroutine
from typing import Any

from bot.imaging import ImageSize
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.polling.durations import DurationModel
from fakes.novita.server import MockNovitaConfig
from fakes.novita.timed import Plan, TimedUpstream

# Loop turns given to runnable coroutines before virtual time jumps to the next wake-up; the
# engine's poll (a pure fake call inside `wait_for`) settles in a handful.
_SETTLE_TURNS = 30


class VirtualTime:
    """A clock and `sleep` that advance only when every coroutine is waiting on a virtual sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._order), wake))
        await wake

    async def run(self, main: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(main)
        while not task.done():
            for _ in range(_SETTLE_TURNS):
                await asyncio.sleep(0)
                if task.done():
                    break
            else:
                if not self._timers:
                    raise RuntimeError("virtual time stalled: nothing is sleeping")
                when, _, wake = heapq.heappop(self._timers)
                self.now = max(self.now, when)
                if not wake.cancelled():
                    wake.set_result(None)
        return task.result()


def planned_like_the_mock(config: MockNovitaConfig) -> Plan:
    """Task plans drawn exactly as the mock Novita draws them (same timing, seed, multiplier)."""
    rng = random.Random(config.seed)
    multiplier = config.duration_multiplier

    def plan(size: ImageSize, index: int) -> tuple[float, float]:
        queue_wait, run = config.timing.plan(rng, size.width, size.height)
        return queue_wait, run * multiplier(index) if multiplier is not None else run

    return plan


async def run_jobs_virtual(
    planner: Any, max_interval: float, config: MockNovitaConfig, sizes: list[ImageSize],
    concurrency: int, seed: int,
) -> list[tuple[int, str, int, float, float, bool]]:
    """(index, size, polls, detection delay, duration, queued) per job, in job order."""
    time = VirtualTime()
    upstream = TimedUpstream(time.clock, planned_like_the_mock(config))
    engine = JobEngine(
        upstream,
        JobSettings(poll_min_interval=0.5, poll_max_interval=max_interval,
                    deadline_seconds=900.0),
        DurationModel(),
        planner=planner,
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(seed),
    )
    slots = asyncio.Semaphore(concurrency)
    rows: list[tuple[int, str, int, float, float, bool]] = []

    async def one(index: int, size: ImageSize) -> None:
        async with slots:
            result = await engine.run("a poll benchmark poster", size)
        created, start, finish = upstream.tasks[result.task_id]
        rows.append((index, size.wire, result.polls, upstream.detection_delay(result.task_id),
                     finish - created, start > created))

    async def everything() -> None:
        await asyncio.gather(*(one(k, size) for k, size in enumerate(sizes)))

    await time.run(everything())
    rows.sort()
    return rows
