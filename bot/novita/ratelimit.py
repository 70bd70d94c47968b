"""`SubmitRateLimiter`: a bot-wide sliding window on task submissions per minute.

Novita limits images per minute per key and answers a burst with 429s. Waiting here instead
keeps every job's submit predictable and lets the UI say "waiting" with a queue position.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from bot.clock import Monotonic, Sleep

WINDOW_SECONDS = 60.0


class SubmitRateLimiter:
    """At most `per_minute` grants in any `window` seconds; 0 means unlimited.

    Waiters are served first come, first served (one waiter at a time holds the lock while it
    sleeps). `hold_off()` pauses every submitter, e.g. after Novita answered 429.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        window: float = WINDOW_SECONDS,
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must not be negative")
        if window <= 0:
            raise ValueError("window must be positive")
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._grants: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._paused_until = 0.0

    @property
    def waiting(self) -> int:
        """How many callers are inside `acquire()` and not yet granted."""
        return self._waiting

    @property
    def unlimited(self) -> bool:
        return self.per_minute == 0

    def hold_off(self, seconds: float) -> None:
        """Grant nothing for the next `seconds` (never shortens an existing pause)."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def _wait_needed(self, now: float) -> float:
        # Same expression as the wait below, so rounding can never grant an extra slot.
        while self._grants and self._grants[0] + self.window <= now:
            self._grants.popleft()
        pause = max(0.0, self._paused_until - now)
        if self.unlimited or len(self._grants) < self.per_minute:
            return pause
        return max(pause, self._grants[0] + self.window - now)

    async def acquire(self) -> float:
        """Wait for a slot and take it. Returns the seconds spent waiting."""
        started = self._clock()
        if self.unlimited and self._paused_until <= started and not self._waiting:
            return 0.0
        self._waiting += 1
        try:
            async with self._lock:
                while (wait := self._wait_needed(self._clock())) > 0:
                    await self._sleep(wait)
                if not self.unlimited:
                    self._grants.append(self._clock())
        finally:
            self._waiting -= 1
        return max(0.0, self._clock() - started)
