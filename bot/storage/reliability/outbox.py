"""Writes that must land: retried in order, with backoff, until the database takes them.

A job's end is recorded after the member already has their image; if the database is briefly
unreachable at that moment the write must not be lost (the ledger row would count as "in
progress" and against every cap). `WriteOutbox.put` queues a write; one drainer applies the
queue strictly in order (a job's "submitted" before its "finished"), retrying the head with
exponential backoff while the database is away. The journal is the durable half: a process that
dies with writes still queued leaves journal rows behind, which the next start settles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from bot.storage.reliability.outage import OutageLog, is_database_unavailable

log = logging.getLogger("bot.storage")

Write = Callable[[], Awaitable[object]]
INITIAL_BACKOFF: Final = 0.25
MAX_BACKOFF: Final = 10.0


@dataclass(eq=False)
class _Pending:
    label: str  # for logs, e.g. "finish job 12"; never holds a secret
    write: Write
    landed: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class WriteOutbox:
    def __init__(
        self,
        outage: OutageLog | None = None,
        *,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.outage = outage or OutageLog()
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._queue: deque[_Pending] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def put(self, label: str, write: Write) -> asyncio.Future[bool]:
        """Queue a write; the future is True once it landed (False if it was a bug, dropped)."""
        item = _Pending(label, write)
        self._queue.append(item)
        self._idle.clear()
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="write-outbox")
        return item.landed

    async def flush(self, within: float) -> int:
        """Wait up to `within` seconds for the queue to empty; returns how many are left."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within)
        return len(self._queue)

    async def close(self, within: float = 5.0) -> int:
        """Flush what can be flushed, then stop; writes left are settled at the next start."""
        left = await self.flush(within)
        if left:
            log.warning("%d end-of-job writes could not be recorded before shutdown; the next "
                        "start settles them from the journal", left)
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
        for item in self._queue:
            if not item.landed.done():
                item.landed.cancel()
        return left

    async def _drain(self) -> None:
        backoff = self.initial_backoff
        while self._queue:
            item = self._queue[0]
            try:
                await item.write()
            except Exception as error:
                if not is_database_unavailable(error):
                    # A bug, not an outage: retrying will not help. Say so loudly, move on.
                    log.error("could not record %s", item.label, exc_info=error)
                    self._queue.popleft()
                    if not item.landed.done():
                        item.landed.set_result(False)
                    continue
                self.outage.failed(error, f"recording {item.label}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = self.initial_backoff
            self.outage.succeeded()
            self._queue.popleft()
            if not item.landed.done():
                item.landed.set_result(True)
        self._idle.set()
