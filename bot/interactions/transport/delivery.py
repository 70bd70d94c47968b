"""Getting things onto Discord without tripping its limits.

- `ThrottledProgress` edits a progress message only when what it shows changes, and never more
  often than `PROGRESS_EDIT_INTERVAL_SECONDS`; and, whatever the interval, progress never takes
  the last of a message's ~5 edits per 5 s (`MESSAGE_EDITS_PER_WINDOW`): that one is kept for
  the result, so a finished image is delivered at once, never behind a 429 or a wait.
- `EditBudget` caps progress edits bot-wide (`PROGRESS_EDITS_PER_SECOND`): with hundreds of jobs,
  progress is the first thing to thin out, so the event loop stays free for what cannot wait
  (acknowledging interactions inside 3 s, delivering results).
- `fit_to_limit` recompresses an image (Pillow, in a worker thread) until it fits the
  interaction's attachment limit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Final, Generic, TypeVar

from PIL import Image

log = logging.getLogger(__name__)

T = TypeVar("T")

# Discord's per-message edit limit (about 5 edits per 5 s). Progress uses at most one less.
MESSAGE_EDITS_PER_WINDOW: Final = 5
MESSAGE_EDIT_WINDOW: Final = 5.0
# Edits leave the bot earlier than they reach Discord; spacing them by a little more than the
# window keeps jitter on the way from making two edits look closer together there.
EDIT_WINDOW_MARGIN: Final = 0.25
_QUALITIES: Final = (92, 85, 75, 65, 55, 45)
_SCALE_STEP: Final = 0.8
_MIN_SIDE: Final = 256


class EditBudget:
    """A bot-wide token bucket for progress edits, served first come, first served.

    `try_take()` never waits (the job's own progress callback must not stall polling);
    `take()` waits its turn behind earlier waiters, so one busy job cannot starve the others.
    `per_second` 0 means no cap.
    """

    def __init__(
        self,
        per_second: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_second = per_second
        self.burst = burst if burst is not None else max(1.0, per_second)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._queue = asyncio.Lock()  # asyncio.Lock wakes waiters in FIFO order

    @property
    def unlimited(self) -> bool:
        return self.per_second <= 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now

    def try_take(self) -> bool:
        if self.unlimited:
            return True
        if self._queue.locked():
            return False  # others are already waiting their turn
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def take(self) -> None:
        if self.unlimited:
            return
        async with self._queue:
            self._refill()
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self.per_second)
                self._refill()
            self._tokens -= 1


class ThrottledProgress(Generic[T]):
    """Forward an update to `edit` when its signature changed and the interval has passed.

    An update that arrives too early is kept and sent once the interval has passed, unless a
    newer one replaces it first; so the message always catches up with the latest state, even
    when no further update comes (a queue position that stays put, a phase that lasts).
    """

    def __init__(
        self,
        edit: Callable[[T], Awaitable[None]],
        signature: Callable[[T], Hashable],
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        budget: EditBudget | None = None,
        edits_per_window: int = MESSAGE_EDITS_PER_WINDOW,
        edit_window: float = MESSAGE_EDIT_WINDOW,
    ) -> None:
        self._edit = edit
        # The final edit (the result) needs one slot of the message's rate limit: keep it free.
        self._progress_slots = max(1, edits_per_window - 1)
        self._edit_window = edit_window + EDIT_WINDOW_MARGIN
        self._recent: collections.deque[float] = collections.deque(maxlen=self._progress_slots)
        self._budget = budget
        self._signature = signature
        self._min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._last_signature: Hashable = object()
        self._last_edit_at: float | None = None
        self._lock = asyncio.Lock()
        self._pending: tuple[T] | None = None  # the latest update not shown yet, if any
        self._flush_task: asyncio.Task[None] | None = None
        self._closed = False
        self.edits = 0

    async def offer(self, update: T) -> bool:
        """Edit now if due (returns whether an edit was made), else keep it for later.
        Discord errors are logged, not raised."""
        if self._closed:
            return False
        signature = self._signature(update)
        if signature == self._last_signature:
            self._drop_pending()  # the message already shows this
            return False
        if (
            self._lock.locked()
            or self.seconds_until_allowed() > 0
            or (self._budget is not None and not self._budget.try_take())
        ):
            self._pending = (update,)
            self._schedule_flush()
            return False
        return await self._send(update, signature)

    async def _send(self, update: T, signature: Hashable) -> bool:
        async with self._lock:
            self._last_edit_at = self._clock()
            self._recent.append(self._last_edit_at)
            self._last_signature = signature
            self._drop_pending()
            try:
                await self._edit(update)
            except Exception:  # a failed progress edit must never fail the job
                log.warning("progress edit failed", exc_info=True)
                return False
            self.edits += 1
            return True

    def _drop_pending(self) -> None:
        self._pending = None
        task = self._flush_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()  # it is only sleeping: an edit in flight holds the lock we hold
            self._flush_task = None

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush_later(), name="progress-flush")

    async def _flush_later(self) -> None:
        while self._pending is not None and not self._closed:
            await self._sleep(self.seconds_until_allowed())
            if self._budget is not None:
                await self._budget.take()  # wait our turn among all jobs
            async with self._lock:  # let an edit in flight land first
                pass
            pending, self._pending = self._pending, None
            if pending is None or self._closed:
                return
            update = pending[0]
            signature = self._signature(update)
            if signature != self._last_signature:
                await self._send(update, signature)

    async def close(self) -> None:
        """No more progress edits: drop what is pending and let an edit in flight finish."""
        self._closed = True
        self._pending = None
        async with self._lock:
            pass
        task, self._flush_task = self._flush_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def seconds_until_allowed(self) -> float:
        """How long the next progress edit must wait: the interval since the last one, and a
        free slot of the message's edit limit besides the one kept for the final edit."""
        if self._last_edit_at is None:
            return 0.0
        now = self._clock()
        wait = self._min_interval - (now - self._last_edit_at)
        if len(self._recent) == self._progress_slots:  # the oldest must leave the window first
            wait = max(wait, self._recent[0] + self._edit_window - now)
        return max(0.0, wait)


class ImageTooLargeForDiscord(Exception):
    """Even the smallest recompression does not fit the upload limit."""


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def fit_to_limit_sync(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Return (jpeg_bytes, changed). Lowers JPEG quality, then scales down, until under `limit`."""
    with Image.open(io.BytesIO(data)) as opened:
        is_jpeg = opened.format == "JPEG"
        if is_jpeg and len(data) <= limit:
            return data, False
        image = opened.convert("RGB")
    while True:
        for quality in _QUALITIES:
            encoded = _encode_jpeg(image, quality)
            if len(encoded) <= limit:
                return encoded, True
        width, height = image.size
        if min(width, height) * _SCALE_STEP < _MIN_SIDE:
            raise ImageTooLargeForDiscord(f"cannot fit {len(data)} bytes under {limit}")
        image = image.resize((int(width * _SCALE_STEP), int(height * _SCALE_STEP)))


async def fit_to_limit(data: bytes, limit: int) -> tuple[bytes, bool]:
    """`fit_to_limit_sync` off the event loop (only when work is needed)."""
    if len(data) <= limit and data[:3] == b"\xff\xd8\xff":
        return data, False  # already a JPEG that fits: no decode, no thread
    return await asyncio.to_thread(fit_to_limit_sync, data, limit)
