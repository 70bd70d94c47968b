"""Decode every downloaded image before anyone sees it.

A truncated JPEG, an HTML page served as `image/jpeg`, or a small PNG declaring 13000×13000
pixels (which Pillow would happily inflate to gigabytes) all become `InvalidImageError`, which the
job layer reports and refunds. The pixel cap is checked from the header, before any pixel is
decoded. Decoding is CPU work: it runs in worker threads, a few at a time, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import Final

from PIL import Image, UnidentifiedImageError

# Register the three decoders now: otherwise the first open() would import every Pillow plugin
# (~0.1 s holding the GIL) in the middle of serving jobs.
from PIL import JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401  isort: skip

from bot.imaging import MAX_SIDE
from bot.novita.errors import InvalidImageError

# Qwen-Image's largest output is 1536×1536 (2.4 MP); 4 MP leaves a margin for odd shapes.
MAX_IMAGE_PIXELS: Final = 4 * 1024 * 1024
assert MAX_SIDE * MAX_SIDE < MAX_IMAGE_PIXELS
# Formats Novita returns. Refusing the rest keeps Pillow's rarer decoders out of reach.
ALLOWED_FORMATS: Final = ("JPEG", "PNG", "WEBP")
# Two cores is the common deployment; more concurrent decodes would only queue for the CPU.
DEFAULT_DECODE_CONCURRENCY: Final = 2


@dataclass(frozen=True)
class CheckedImage:
    format: str  # Pillow's name: "JPEG", "PNG", "WEBP"
    width: int
    height: int


def check_image(
    data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS, task_id: str | None = None
) -> CheckedImage:
    """Fully decode `data` (blocking); `InvalidImageError` unless it is a whole, sane image."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as probe:
            image_format = probe.format or "?"
            width, height = probe.size
            if width * height > max_pixels:
                raise _too_many_pixels(width, height, max_pixels, task_id)
            probe.verify()  # structure and checksums, without decoding pixels
        # verify() leaves the image unusable, so decode a fresh one: this catches truncation.
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            if image.format == "JPEG":
                # Decode at 1/8 scale: every byte of the scan is still read (so truncation is
                # still caught) at a quarter of the CPU.
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except InvalidImageError:
        raise
    except Image.DecompressionBombError:  # Pillow's own (much higher) limit, hit at open
        raise InvalidImageError("image declares far too many pixels", task_id=task_id) from None
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"image host sent bytes that are not a {'/'.join(ALLOWED_FORMATS)} image",
            task_id=task_id,
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidImageError(
            f"image is damaged or truncated ({type(exc).__name__}: {exc})", task_id=task_id
        ) from None
    return CheckedImage(image_format, width, height)


class ImageChecker:
    """`check_image` in a worker thread, at most `concurrency` at once."""

    def __init__(
        self,
        *,
        max_pixels: int = MAX_IMAGE_PIXELS,
        concurrency: int = DEFAULT_DECODE_CONCURRENCY,
    ) -> None:
        if max_pixels <= 0 or concurrency <= 0:
            raise ValueError("max_pixels and concurrency must be positive")
        self.max_pixels = max_pixels
        self._slots = asyncio.Semaphore(concurrency)

    async def check(self, data: bytes, *, task_id: str | None = None) -> CheckedImage:
        async with self._slots:
            return await asyncio.to_thread(
                check_image, data, max_pixels=self.max_pixels, task_id=task_id
            )


def _too_many_pixels(
    width: int, height: int, max_pixels: int, task_id: str | None
) -> InvalidImageError:
    return InvalidImageError(
        f"image declares {width}×{height} pixels, over the {max_pixels:,} pixel cap",
        task_id=task_id,
    )
