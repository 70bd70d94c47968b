"""Checks on a member's own image for `/imagine-edit`, before anything is sent upstream.

Two steps, both cheap:

1. `check_upload(filename, content_type, size_bytes, width, height)`: from the attachment's
   metadata alone (Discord reports all five), so an obviously wrong file is refused before a
   single byte is read.
2. `inspect_upload(data)`: once the bytes are read (at most `MAX_UPLOAD_BYTES`), Pillow reads
   the *header* (format and dimensions, no pixels decoded) in a worker thread, and the same rules
   apply to what the file really is, whatever its name or declared type say.

Problems are `InvalidUploadError`s with an `UploadProblem` reason code and the limit that was
passed; the edge words them. The pixel cap is the one every downloaded image obeys
(`bot.novita.image_check.MAX_IMAGE_PIXELS`).
"""

from __future__ import annotations

import asyncio
import enum
import io
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from PIL import Image, UnidentifiedImageError

from bot.imaging import InvalidInputError
from bot.novita.image_check import ALLOWED_FORMATS, MAX_IMAGE_PIXELS

MAX_UPLOAD_BYTES: Final = 10 * 1024 * 1024
# Declared media type → Pillow format name.
ACCEPTED_TYPES: Final = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
ACCEPTED_EXTENSIONS: Final = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
assert set(ACCEPTED_TYPES.values()) == set(ALLOWED_FORMATS)


class UploadProblem(enum.StrEnum):
    UNSUPPORTED_TYPE = "unsupported_type"  # not PNG, JPEG or WebP (by type, name or content)
    EMPTY = "empty"                        # zero bytes
    TOO_LARGE = "too_large"                # over `limit` bytes
    TOO_MANY_PIXELS = "too_many_pixels"    # width × height over `limit` pixels
    UNREADABLE = "unreadable"              # claims to be an image, but its header is damaged


class InvalidUploadError(InvalidInputError):
    def __init__(self, problem: UploadProblem, limit: int | None = None) -> None:
        self.problem = problem
        self.limit = limit
        suffix = f" (limit {limit})" if limit is not None else ""
        super().__init__(f"upload refused: {problem}{suffix}")


@dataclass(frozen=True)
class UploadHeader:
    format: str  # Pillow's name: "PNG", "JPEG", "WEBP"
    width: int
    height: int

    @property
    def media_type(self) -> str:
        return f"image/{self.format.lower()}"


def declared_format(filename: str | None, content_type: str | None) -> str | None:
    """The format the attachment claims: its media type if it has one, else its extension."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        return ACCEPTED_TYPES.get(media)
    if filename:
        return ACCEPTED_EXTENSIONS.get(PurePosixPath(filename.lower()).suffix)
    return None


def check_upload(
    filename: str | None,
    content_type: str | None,
    size_bytes: int,
    width: int | None = None,
    height: int | None = None,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> None:
    """Refuse (`InvalidUploadError`) from metadata alone; dimensions are checked if known."""
    if declared_format(filename, content_type) is None:
        raise InvalidUploadError(UploadProblem.UNSUPPORTED_TYPE)
    if size_bytes <= 0:
        raise InvalidUploadError(UploadProblem.EMPTY)
    if size_bytes > max_bytes:
        raise InvalidUploadError(UploadProblem.TOO_LARGE, max_bytes)
    if width is not None and height is not None and width * height > max_pixels:
        raise InvalidUploadError(UploadProblem.TOO_MANY_PIXELS, max_pixels)


def read_header(data: bytes) -> UploadHeader:
    """Format and dimensions from the header only (blocking, but no pixel is decoded).

    Pillow's own decompression-bomb guard is never reached: `open` only parses the header.
    """
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as probe:
            width, height = probe.size
            return UploadHeader(probe.format or "?", width, height)
    except UnidentifiedImageError:
        raise InvalidUploadError(UploadProblem.UNSUPPORTED_TYPE) from None
    except Image.DecompressionBombError:
        raise InvalidUploadError(UploadProblem.TOO_MANY_PIXELS, MAX_IMAGE_PIXELS) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidUploadError(UploadProblem.UNREADABLE) from None


async def inspect_upload(
    data: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> UploadHeader:
    """The rules of `check_upload` applied to what the bytes really are, whatever their name or
    declared type said (header read in a worker thread). A JPEG named `.png` passes as a JPEG."""
    if len(data) > max_bytes:  # before Pillow sees a byte of it
        raise InvalidUploadError(UploadProblem.TOO_LARGE, max_bytes)
    header = await asyncio.to_thread(read_header, data)
    check_upload(None, header.media_type, len(data), header.width, header.height,
                 max_bytes=max_bytes, max_pixels=max_pixels)
    return header
