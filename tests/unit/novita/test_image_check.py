"""Decoding downloaded images: what passes, what is refused, and how many decode at once."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from bot.novita import image_check
from bot.novita.errors import InvalidImageError
from bot.novita.image_check import CheckedImage, ImageChecker, check_image
from fakes.image_host import bomb_png, good_jpeg, good_png, truncated_jpeg


def encoded(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_whole_images_pass(fmt: str) -> None:
    assert check_image(encoded(fmt)) == CheckedImage(fmt, 40, 30)


def test_the_largest_qwen_image_output_passes() -> None:
    assert check_image(encoded("JPEG", (1536, 1536))).width == 1536


@pytest.mark.parametrize(
    "data",
    [
        truncated_jpeg(),
        good_png()[:-30],                       # cut inside the image data
        good_jpeg()[:200],
        b"",
        b"<html>not an image</html>",
        encoded("GIF"),                         # a real image, but not a format Novita sends
        encoded("BMP"),
    ],
)
def test_damaged_or_foreign_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidImageError):
        check_image(data, task_id="t-9")


def test_a_png_with_a_bad_checksum_is_refused() -> None:
    data = bytearray(good_png())
    data[-20] ^= 0xFF  # flips a byte inside IDAT (its CRC no longer matches)
    with pytest.raises(InvalidImageError):
        check_image(bytes(data))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_is_refused_from_its_header_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    touched: list[str] = []  # inflating 169 MP would go through one of these
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: touched.append("load"))
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "verify",
                        lambda image: touched.append("verify"))
    with pytest.raises(InvalidImageError, match="13000×13000"):
        check_image(bomb_png())
    assert touched == []


def test_the_pixel_cap_is_a_parameter() -> None:
    with pytest.raises(InvalidImageError, match="pixel cap"):
        check_image(encoded("PNG", (100, 100)), max_pixels=9_999)


async def test_decoding_runs_in_threads_a_bounded_number_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = threading.Lock()
    running = peak = 0
    loop_thread = threading.get_ident()

    def slow_check(data: bytes, *, max_pixels: int, task_id: str | None) -> CheckedImage:
        nonlocal running, peak
        assert threading.get_ident() != loop_thread  # never on the event loop
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return CheckedImage("JPEG", 1, 1)

    monkeypatch.setattr(image_check, "check_image", slow_check)
    checker = ImageChecker(concurrency=2)
    results = await asyncio.gather(*(checker.check(b"x") for _ in range(6)))
    assert len(results) == 6 and 1 <= peak <= 2
