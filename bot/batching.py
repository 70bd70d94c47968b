"""Group commit: one task drains every pending request into one decision, in arrival order.

Requests that arrive while a batch is being decided wait for the next one, so under load each
database transaction admits many requests (one lock, a handful of queries, one commit), and a
quiet bot still answers a lone request at once (no waiting to fill a batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, Generic, TypeVar

log = logging.getLogger(__name__)

Request = TypeVar("Request")
Result = TypeVar("Result")

# Bounds one transaction's length (and its IN lists); a burst is decided in several batches.
DEFAULT_MAX_BATCH: Final = 500


class Batcher(Generic[Request, Result]):
    """`submit()` a request, get its result from `decide(batch)`.

    `decide` returns one result per request, in order; if it raises, every request of that batch
    gets the exception. A result whose caller stopped waiting (cancelled) goes to `orphaned`,
    so e.g. a reservation nobody will use can be given back.
    """

    def __init__(
        self,
        decide: Callable[[Sequence[Request]], Awaitable[Sequence[Result]]],
        *,
        orphaned: Callable[[Result], Coroutine[Any, Any, None]] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        name: str = "batcher",
    ) -> None:
        self._decide = decide
        self._orphaned = orphaned
        self._max_batch = max_batch
        self._name = name
        self._pending: deque[tuple[Request, asyncio.Future[Result]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cleanups: set[asyncio.Task[None]] = set()
        self._deciding: list[asyncio.Future[Result]] = []
        self.batches = 0  # decided so far (for tests and benchmarks)

    async def submit(self, request: Request) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        self._wakeup.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                count = min(len(self._pending), self._max_batch)
                batch = [self._pending.popleft() for _ in range(count)]
                self._deciding = [future for _, future in batch]
                try:
                    await self._run(batch)
                finally:
                    self._deciding = []

    async def _run(self, batch: list[tuple[Request, asyncio.Future[Result]]]) -> None:
        self.batches += 1
        try:
            results = await self._decide([request for request, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
            elif self._orphaned is not None:
                task = asyncio.create_task(self._orphaned(result), name=f"{self._name}-orphan")
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)

    async def close(self) -> None:
        """Stop deciding; requests still waiting fail with CancelledError."""
        task, self._task = self._task, None
        deciding = list(self._deciding)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for future in deciding:
            future.cancel()
        while self._pending:
            _, future = self._pending.popleft()
            future.cancel()
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
