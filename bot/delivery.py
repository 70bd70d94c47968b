"""Getting things onto Discord without tripping its limits.

- `ThrottledProgress` edits a progress message only when what it shows changes, and never more
  often than `PROGRESS_EDIT_INTERVAL_SECONDS`, so dozens of jobs stay under Discord's
  ~5-edits-per-5-seconds per-message limit.
- `fit_to_limit` recompresses an image (Pillow, in a worker thread) until it fits the
  interaction's attachment limit.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Final, Generic, TypeVar

from PIL import Image

log = logging.getLogger(__name__)

T = TypeVar("T")

_QUALITIES: Final = (92, 85, 75, 65, 55, 45)
_SCALE_STEP: Final = 0.8
_MIN_SIDE: Final = 256


class ThrottledProgress(Generic[T]):
    """Forward an update to `edit` when its signature changed and the interval has passed."""

    def __init__(
        self,
        edit: Callable[[T], Awaitable[None]],
        signature: Callable[[T], Hashable],
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._edit = edit
        self._signature = signature
        self._min_interval = min_interval
        self._clock = clock
        self._last_signature: Hashable = object()
        self._last_edit_at: float | None = None
        self._lock = asyncio.Lock()
        self.edits = 0

    async def offer(self, update: T) -> bool:
        """Edit if due; returns whether an edit was made. Discord errors are logged, not raised."""
        signature = self._signature(update)
        if signature == self._last_signature:
            return False
        now = self._clock()
        if self._last_edit_at is not None and now - self._last_edit_at < self._min_interval:
            return False  # the next update will carry the change
        if self._lock.locked():
            return False  # an edit is in flight; do not queue behind it
        async with self._lock:
            self._last_edit_at = now
            self._last_signature = signature
            try:
                await self._edit(update)
            except Exception:  # a failed progress edit must never fail the job
                log.warning("progress edit failed", exc_info=True)
                return False
            self.edits += 1
            return True

    def seconds_until_allowed(self) -> float:
        """How long a final edit should wait to keep the edit rate under the interval."""
        if self._last_edit_at is None:
            return 0.0
        return max(0.0, self._min_interval - (self._clock() - self._last_edit_at))


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
