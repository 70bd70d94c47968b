"""Clocks that tests and fakes move by hand, so nothing waits on real time.

One module for every controllable clock in the project: the job engine, the rate limiter and
the progress throttle take a monotonic `() -> float` (and an async `sleep`); limits and storage
take a UTC `() -> datetime`; the fake Discord adds an offset to real time to expire tokens. Every
fake sleep in the tests is one of these clocks' `sleep`, never a private re-implementation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable


class ManualClock:
    """Monotonic seconds that move only when told: `clock.advance(2.5)`, or `await sleep(s)`.

    `sleep` records each wait and moves time forward at once (yielding to the loop once), so
    code that sleeps runs instantly and a test can read what it waited for in `sleeps`.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self.now += seconds
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"asked to sleep a negative time ({seconds})")
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class GatedClock(ManualClock):
    """A manual clock whose sleeps wait for `release()`, so a test can look at who is waiting
    (`sleeping` is set once someone sleeps); time moves only as each sleep is let through."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self.gate = asyncio.Event()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await self.gate.wait()
        self.now += seconds

    def release(self) -> None:
        self.gate.set()


class ScaledClock:
    """Real monotonic time, sped up: `ScaledClock(0.01)` reads 1 s per real 10 ms and `sleep(1)`
    waits 10 ms. For code that talks to a time-scaled mock Novita over real sockets, so the
    engine still thinks (and learns durations) in the mock's unscaled seconds."""

    def __init__(self, scale: float, base: Callable[[], float] = time.monotonic) -> None:
        if scale <= 0:
            raise ValueError("a time scale must be positive")
        self.scale = scale
        self._base = base

    def __call__(self) -> float:
        return self._base() / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self.scale)


class ManualUtcClock:
    """A settable UTC wall clock: `clock()` is now; `clock.advance(minutes=5)` moves it."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class OffsetClock:
    """Real monotonic time plus an offset that tests move forward (`advance`), e.g. to age a
    fake Discord's interaction tokens past 15 minutes without waiting."""

    def __init__(self, base: Callable[[], float] = time.monotonic) -> None:
        self._base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self._base() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
