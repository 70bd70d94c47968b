"""Bounds how many upstream tasks run at once, and makes the wait fair between people.

When every slot is busy, waiters are served round-robin between owners (people) and first-in,
first-out within one owner, so one member who queues ten images cannot push everyone else back
ten places. Each waiter can watch its position in line change.

The queue lives in one process: with several processes sharing a database, each has its own
queue and its own `capacity` (the ledger still enforces every per-user and per-guild limit).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

PositionCallback = Callable[[int], Awaitable[None]]


class JobSlots(Protocol):
    """Bot-wide concurrency: wait for a free upstream slot, reporting the queue position."""

    def slot(
        self, user_id: int, on_position: Callable[[int], Awaitable[None]]
    ) -> contextlib.AbstractAsyncContextManager[None]: ...


class UnboundedSlots:
    """No bot-wide cap: every job starts at once."""

    @contextlib.asynccontextmanager
    async def slot(
        self, user_id: int, on_position: Callable[[int], Awaitable[None]]
    ) -> AsyncIterator[None]:
        yield


@dataclass(eq=False)
class _Waiter:
    owner: Hashable
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    position: int = 0
    granted: bool = False


class FairQueue:
    """`async with queue.slot(user_id, on_position=cb):` runs the body while holding a slot.

    While waiting, `await on_position(n)` runs in the waiter's own task with 1 for "next in
    line", 2, 3, … each time its place changes (never when a slot is free at once). If that
    callback raises, the waiter leaves the line and the exception propagates to it alone.
    `capacity` 0 means unlimited.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be 0 (unlimited) or more")
        self.capacity = capacity
        self._running = 0
        # Owners in serving order; each holds its own waiters in arrival order.
        self._lines: OrderedDict[Hashable, deque[_Waiter]] = OrderedDict()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._lines.values())

    @asynccontextmanager
    async def slot(
        self, owner: Hashable, on_position: PositionCallback | None = None
    ) -> AsyncIterator[None]:
        await self._acquire(owner, on_position)
        try:
            yield
        finally:
            self._release()

    def _has_room(self) -> bool:
        return self.capacity == 0 or self._running < self.capacity

    async def _acquire(self, owner: Hashable, on_position: PositionCallback | None) -> None:
        if self._has_room() and not self._lines:
            self._running += 1
            return
        waiter = _Waiter(owner)
        self._lines.setdefault(owner, deque()).append(waiter)
        self._renumber()
        reported = 0
        try:
            while not waiter.granted:
                if on_position is not None and waiter.position != reported:
                    reported = waiter.position
                    await on_position(reported)
                else:
                    waiter.moved.clear()
                    await waiter.moved.wait()
        except BaseException:
            if waiter.granted:
                self._release()  # granted just as we were cancelled: pass the slot on
            else:
                self._forget(waiter)
                self._renumber()
            raise

    def _release(self) -> None:
        self._running -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self._lines and self._has_room():
            owner, line = self._lines.popitem(last=False)
            waiter = line.popleft()
            if line:
                self._lines[owner] = line  # this owner goes to the back of the rotation
            self._running += 1
            waiter.granted = True
            waiter.moved.set()
        self._renumber()

    def _forget(self, waiter: _Waiter) -> None:
        line = self._lines.get(waiter.owner)
        if line is None:
            return
        line.remove(waiter)
        if not line:
            del self._lines[waiter.owner]

    def _serving_order(self) -> list[_Waiter]:
        """Everyone waiting, in the order they will be served if nobody else arrives."""
        lines = list(self._lines.values())
        order: list[_Waiter] = []
        depth = 0
        while True:
            turn = [line[depth] for line in lines if len(line) > depth]
            if not turn:
                return order
            order.extend(turn)
            depth += 1

    def _renumber(self) -> None:
        for position, waiter in enumerate(self._serving_order(), start=1):
            if waiter.position != position:
                waiter.position = position
                waiter.moved.set()
