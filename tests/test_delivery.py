from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from bot.delivery import ImageTooLargeForDiscord, ThrottledProgress, fit_to_limit, fit_to_limit_sync


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_throttle_edits_only_changes_and_not_too_often() -> None:
    clock = Clock()
    edits: list[int] = []

    async def edit(value: int) -> None:
        edits.append(value)

    throttle: ThrottledProgress[int] = ThrottledProgress(edit, lambda v: v // 10, 2.0, clock)
    assert await throttle.offer(1)
    assert not await throttle.offer(5)  # same signature
    assert not await throttle.offer(15)  # changed, but only 0 s since the last edit
    clock.now = 2.5
    assert await throttle.offer(15)
    assert edits == [1, 15]
    assert throttle.seconds_until_allowed() == pytest.approx(2.0)


async def test_throttle_survives_a_failing_edit() -> None:
    async def edit(value: int) -> None:
        raise RuntimeError("discord said no")

    throttle: ThrottledProgress[int] = ThrottledProgress(edit, lambda v: v, 0.0)
    assert not await throttle.offer(1)


def noisy_png(side: int) -> bytes:
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def test_small_jpeg_passes_untouched() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), "navy").save(buffer, format="JPEG")
    data = buffer.getvalue()
    assert await fit_to_limit(data, 10_000_000) == (data, False)


def test_oversized_image_is_recompressed_under_the_limit() -> None:
    data = noisy_png(600)
    out, changed = fit_to_limit_sync(data, 150_000)
    assert changed and len(out) <= 150_000
    with Image.open(io.BytesIO(out)) as image:
        assert image.format == "JPEG"


def test_impossible_limit_is_reported() -> None:
    with pytest.raises(ImageTooLargeForDiscord):
        fit_to_limit_sync(noisy_png(300), 100)
