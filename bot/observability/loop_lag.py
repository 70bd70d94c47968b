"""Event-loop lag: sleep a quarter second, over and over, and measure how late we wake.

Anything that blocks the loop (a slow synchronous call, a CPU-heavy image resize) delays every
timer, so the oversleep is a direct measure of how sluggish the bot is for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Final

LAG_INTERVAL: Final = 0.25


class LoopLagMonitor:
    def __init__(
        self,
        record: Callable[[float], None],
        *,
        interval: float = LAG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._record = record
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="loop-lag-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self, rounds: int | None = None) -> None:
        """Measure forever (or `rounds` times, for tests)."""
        done = 0
        while rounds is None or done < rounds:
            before = self._clock()
            await self._sleep(self.interval)
            self._record(max(0.0, self._clock() - before - self.interval))
            done += 1
