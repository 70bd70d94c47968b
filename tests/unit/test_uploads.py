"""`/imagine-edit` uploads: checked from metadata first, then from what the header really says;
then parked on disk, holding no bytes in memory, until released."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from bot.novita.image_check import MAX_IMAGE_PIXELS
from bot.uploads import (
    MAX_UPLOAD_BYTES,
    InvalidUploadError,
    ParkedImages,
    UploadHeader,
    UploadProblem,
    check_upload,
    inspect_upload,
    read_header,
)
from fakes.image_host import bomb_png, good_jpeg, good_png, noise_png, truncated_jpeg
from tests.retained_memory import BotAllocations


def encoded(fmt: str, width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("filename", "content_type"), [
    ("cat.png", "image/png"),
    ("cat.JPG", "image/jpeg"),
    ("cat", "image/webp"),
    ("cat.jpeg", None),         # no declared type: the extension decides
    ("cat.webp", ""),
    ("photo.bin", "image/jpeg; charset=binary"),
])
def test_png_jpeg_and_webp_pass(filename: str, content_type: str | None) -> None:
    check_upload(filename, content_type, 1000, 1024, 1024)


def assert_problem(problem: UploadProblem, limit: int | None = None, **kwargs: object) -> None:
    arguments: dict[str, object] = {"filename": "cat.png", "content_type": "image/png",
                                    "size_bytes": 1000}
    arguments.update(kwargs)
    with pytest.raises(InvalidUploadError) as caught:
        check_upload(**arguments)  # type: ignore[arg-type]
    assert (caught.value.problem, caught.value.limit) == (problem, limit)


def test_metadata_refusals_carry_reason_and_limit() -> None:
    assert_problem(UploadProblem.UNSUPPORTED_TYPE, content_type="image/gif")
    assert_problem(UploadProblem.UNSUPPORTED_TYPE, content_type="image/svg+xml")
    assert_problem(UploadProblem.UNSUPPORTED_TYPE, filename="cat.gif", content_type=None)
    assert_problem(UploadProblem.UNSUPPORTED_TYPE, filename=None, content_type=None)
    assert_problem(UploadProblem.EMPTY, size_bytes=0)
    assert_problem(UploadProblem.TOO_LARGE, MAX_UPLOAD_BYTES, size_bytes=MAX_UPLOAD_BYTES + 1)
    assert_problem(UploadProblem.TOO_MANY_PIXELS, MAX_IMAGE_PIXELS, width=4096, height=1025)
    check_upload("cat.png", "image/png", MAX_UPLOAD_BYTES, 2048, 2048)  # exactly at the caps


@pytest.mark.parametrize(("fmt", "expected"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                              ("WEBP", "image/webp")])
def test_the_header_gives_format_and_size(fmt: str, expected: str) -> None:
    header = read_header(encoded(fmt, 41, 29))
    assert (header.format, header.width, header.height) == (fmt, 41, 29)
    assert header.media_type == expected


def test_a_header_is_enough() -> None:
    """The first bytes of a big PNG carry its size; nothing else is decoded."""
    assert read_header(encoded("PNG", 1000, 700)[:64]) == UploadHeader("PNG", 1000, 700)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own notice
async def test_inspect_refuses_what_the_file_really_is() -> None:
    with pytest.raises(InvalidUploadError) as caught:  # a GIF named .png
        await inspect_upload(encoded("GIF"))
    assert caught.value.problem is UploadProblem.UNSUPPORTED_TYPE
    with pytest.raises(InvalidUploadError) as caught:  # 13000×13000 declared in 20 KB
        await inspect_upload(bomb_png())
    assert caught.value.problem is UploadProblem.TOO_MANY_PIXELS
    with pytest.raises(InvalidUploadError) as caught:
        await inspect_upload(b"<html>hi</html>")
    assert caught.value.problem is UploadProblem.UNSUPPORTED_TYPE
    with pytest.raises(InvalidUploadError) as caught:
        await inspect_upload(b"x" * 100, max_bytes=50)
    assert caught.value.problem is UploadProblem.TOO_LARGE


async def test_inspect_reports_what_the_file_really_is() -> None:
    assert await inspect_upload(good_jpeg()) == UploadHeader("JPEG", 64, 48)  # e.g. named .png
    assert (await inspect_upload(good_png())).format == "PNG"
    with pytest.raises(InvalidUploadError) as caught:
        await inspect_upload(b"")
    assert caught.value.problem is UploadProblem.UNSUPPORTED_TYPE


def test_a_truncated_jpeg_still_has_a_header() -> None:
    """Header only: truncation shows when Novita (or the mock) decodes; the edge may also run
    `bot.novita.image_check.ImageChecker` for a full decode."""
    assert read_header(truncated_jpeg()).format == "JPEG"


# ---- parked uploads ------------------------------------------------------------------------------


async def test_a_parked_upload_has_no_name_on_disk_and_reads_back_whole() -> None:
    lot = ParkedImages()
    data = good_png() * 3  # any bytes: parking does not look at them
    parked = await lot.park(data)
    # Unlinked from the start: whatever ends the process, the kernel frees it, nothing to sweep.
    assert os.fstat(parked.fileno()).st_nlink == 0
    assert (lot.count, lot.parked_bytes, lot.total_parked) == (1, len(data), 1)
    assert await parked.read() == data
    assert await parked.read() == data  # read again (the fallback's second form)

    parked.release()
    parked.release()  # idempotent: the runner and the lifecycle may both let go
    assert parked.released and (lot.count, lot.parked_bytes, lot.total_parked) == (0, 0, 1)
    with pytest.raises(ValueError):
        await parked.read()
    with pytest.raises(ValueError):
        parked.fileno()


async def test_a_parked_upload_keeps_no_bytes_in_memory(tmp_path: Path) -> None:
    lot = ParkedImages(directory=str(tmp_path))
    data = noise_png(600)
    size = len(data)
    with BotAllocations() as held:
        parked = await lot.park(data)
        del data
        assert held.now() == 0  # the file holds them, not the process
        copy = await parked.read()
        assert held.now() >= size  # (what a held copy looks like to the measure)
        del copy
        file = parked._file
        assert file is not None
        parked.release()
    assert file.closed  # its last descriptor closed: the kernel has freed the unlinked file
    assert os.listdir(tmp_path) == []  # never had a name in the folder either
