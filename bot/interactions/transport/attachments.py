"""Files sent to Discord from bytes in memory, released the moment the request is done.

`discord.File` swaps its buffer's `close` for a no-op while the request runs and puts the real
one back afterwards, as an attribute of the buffer itself: the buffer then refers to itself
(buffer → its `__dict__` → its bound `close`), a cycle that only Python's cyclic garbage
collector frees. Each upload's copy of an image (the buffer aiohttp reads from) therefore lived
until the next full collection; after a burst of 1,000 members that was 90 MB of images already
delivered. `releasing` breaks the cycle and closes the buffer, so the copy is freed at once.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import discord


def image_file(
    data: bytes, filename: str, *, spoiler: bool = False, description: str | None = None
) -> discord.File:
    return discord.File(io.BytesIO(data), filename, spoiler=spoiler, description=description)


def release(files: list[discord.File]) -> None:
    """Close each file's buffer and drop the self-reference discord.py leaves on it."""
    for file in files:
        vars(file.fp).pop("close", None)  # the cycle; BytesIO keeps attributes in a __dict__
        file.fp.close()  # BytesIO.close() frees its buffer


@contextlib.contextmanager
def releasing(files: list[discord.File]) -> Iterator[list[discord.File]]:
    """`with releasing([...]) as files: await send(files=files)`; released however it ends."""
    try:
        yield files
    finally:
        release(files)
