"""Memory the bot's own code keeps alive, measured with `tracemalloc` (deterministic, not RSS).

`BotAllocations` counts the live image-sized blocks whose allocation traceback passes through a
module of `bot/` (any frame, so bytes aiohttp or discord.py read on the bot's behalf count too);
what the fakes and the test allocate does not. The fakes in the same process keep their own
copies of every upload, so RSS could not tell the bot's share apart.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from types import TracebackType

import bot

BOT_FILES = str(Path(bot.__file__).resolve().parent / "*")
FRAMES = 20  # reaches the bot's frame under aiohttp's and discord.py's; more is much slower
LARGE_BLOCK = 64 * 1024  # an image's bytes are one block; the bot's bookkeeping never this big


class BotAllocations:
    """`with BotAllocations() as held: ... held.now()`: bytes the bot's code holds right now."""

    def __enter__(self) -> BotAllocations:
        self._was_tracing = tracemalloc.is_tracing()
        if not self._was_tracing:
            tracemalloc.start(FRAMES)
        return self

    def now(self) -> int:
        """Bytes in live blocks of at least `LARGE_BLOCK` the bot's code allocated: image-sized
        buffers, without the lazy imports and thread pools that come and go around them."""
        gc.collect()  # only what is really reachable
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, BOT_FILES, all_frames=True)])
        return sum(trace.size for trace in snapshot.traces if trace.size >= LARGE_BLOCK)

    def stop(self) -> None:
        """Stop tracing early (it slows everything down) unless someone else started it."""
        if not self._was_tracing:
            tracemalloc.stop()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

