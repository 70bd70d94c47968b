"""Upload buffers are freed by reference counting, not left to the cyclic garbage collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from bot.interactions.transport.attachments import image_file, release, releasing


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Only reference counting frees anything while a test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _sent_and_dropped(*, released: bool) -> weakref.ref[object]:
    file = image_file(b"\xff\xd8" + bytes(100_000), "result.jpeg", spoiler=True)
    buffer = weakref.ref(file.fp)
    file.close()  # what discord.py does when its request is done
    if released:
        release([file])
    return buffer


@pytest.mark.usefixtures("no_cyclic_gc")
def test_discord_py_leaves_the_buffer_in_a_cycle_that_release_breaks() -> None:
    # Without release, the buffer outlives every reference to the file (freed only by the
    # cyclic collector): the reason `releasing` exists.
    assert _sent_and_dropped(released=False)() is not None
    assert _sent_and_dropped(released=True)() is None


@pytest.mark.usefixtures("no_cyclic_gc")
def test_releasing_frees_the_buffer_even_when_the_send_fails() -> None:
    file = image_file(b"png", "chart.png", description="a chart")
    assert file.description == "a chart" and file.filename == "chart.png"
    buffer = weakref.ref(file.fp)
    with pytest.raises(RuntimeError), releasing([file]) as files:
        files[0].close()
        raise RuntimeError("Discord said no")
    assert file.fp.closed
    del file, files
    assert buffer() is None
