"""A member's own image for `/imagine-edit`: checked before anything is sent upstream, then
parked on disk until it is.

Two checks, both cheap:

1. `check_upload(filename, content_type, size_bytes, width, height)`: from the attachment's
   metadata alone (Discord reports all five), so an obviously wrong file is refused before a
   single byte is read.
2. `inspect_upload(data)`: once the bytes are read (at most `MAX_UPLOAD_BYTES`), Pillow reads
   the *header* (format and dimensions, no pixels decoded) in a worker thread, and the same rules
   apply to what the file really is, whatever its name or declared type say.

Problems are `InvalidUploadError`s with an `UploadProblem` reason code and the limit that was
passed; the edge words them. The pixel cap is the one every downloaded image obeys
(`bot.novita.image_check.MAX_IMAGE_PIXELS`).

Then `ParkedImages.park(data)` writes the checked bytes once into an anonymous temporary file
and the edge drops its copy: a job waiting for a slot and polling for minutes holds a file
handle, not up to 10 MB. The file has no name on disk (`tempfile.TemporaryFile`: `O_TMPFILE`, or
unlinked as soon as it is made), so nothing is left behind whatever ends the process, kill -9
included, and there is nothing to sweep at start-up. The submit reads it back only if Novita is
sent a data URI (by default it is sent the attachment's URL); `ParkedImage.release` closes it the
moment Novita has the task, and on every other way a job ends.
"""

from __future__ import annotations

import asyncio
import enum
import io
import tempfile
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Final

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


class ParkedImage:
    """One checked upload's bytes in an anonymous temporary file, until its edit is submitted.

    Holds no image bytes in memory; `read` copies them back for a data URI, `release` closes the
    file (which frees it on disk) and is safe to call any number of times.
    """

    def __init__(self, file: IO[bytes], size: int, lot: ParkedImages) -> None:
        self._file: IO[bytes] | None = file
        self.size = size
        self._lot = lot
        self._lock = threading.Lock()  # a read in a worker thread, a release on the loop

    @property
    def released(self) -> bool:
        return self._file is None

    def fileno(self) -> int:
        """The open file's descriptor (tests check that it has no name on disk)."""
        if self._file is None:
            raise ValueError("the parked image was released")
        return self._file.fileno()

    async def read(self) -> bytes:
        """The bytes as they were parked (read in a worker thread)."""
        return await asyncio.to_thread(self._read)

    def _read(self) -> bytes:
        with self._lock:
            if self._file is None:
                raise ValueError("the parked image was released")
            self._file.seek(0)
            return self._file.read()

    def release(self) -> None:
        with self._lock:
            file, self._file = self._file, None
        if file is not None:
            file.close()
            self._lot._left(self)


class ParkedImages:
    """The process's parked uploads: parks them and counts what is parked right now.

    `directory` is where the files live (default: the system's temporary folder, `TMPDIR`).
    """

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        self.count = 0
        self.parked_bytes = 0  # on disk; no parked byte is held in memory
        self.total_parked = 0  # every upload ever parked (for tests and metrics)

    async def park(self, data: bytes) -> ParkedImage:
        """Write `data` into a new anonymous file (in a worker thread); the caller then drops
        its own reference to `data`."""
        file = await asyncio.to_thread(self._write, data)
        parked = ParkedImage(file, len(data), self)
        self.count += 1
        self.parked_bytes += parked.size
        self.total_parked += 1
        return parked

    def _write(self, data: bytes) -> IO[bytes]:
        # Outlives this call on purpose: `ParkedImage.release` closes it.
        file = tempfile.TemporaryFile(prefix="imagine-upload-", dir=self.directory)  # noqa: SIM115
        try:
            file.write(data)
            file.flush()
        except BaseException:
            file.close()
            raise
        return file

    def _left(self, parked: ParkedImage) -> None:
        self.count -= 1
        self.parked_bytes -= parked.size
