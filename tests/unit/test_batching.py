"""Group commit (`bot.batching.Batcher`): what arrives meanwhile is decided together, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.batching import Batcher


class Decider:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, batch: Sequence[int]) -> list[int]:
        self.batches.append(list(batch))
        await self.release.wait()
        if -1 in batch:
            raise ValueError("a bad request spoils its batch")
        return [n * 10 for n in batch]


async def _blocked_on_first(
    batcher: Batcher[int, int], decide: Decider, first: int
) -> asyncio.Future[int]:
    """Submit `first` and hold its decision open, so what comes next has to wait for a batch."""
    decide.release.clear()
    future = asyncio.ensure_future(batcher.submit(first))
    await asyncio.sleep(0)  # the drainer took it and is deciding
    return future


async def test_a_lone_request_is_decided_at_once_and_a_crowd_in_few_batches() -> None:
    decide = Decider()
    batcher = Batcher(decide, max_batch=4)
    assert await batcher.submit(1) == 10
    decide.release.clear()
    first = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)  # batch [2] is being decided ...
    crowd = [asyncio.ensure_future(batcher.submit(n)) for n in range(3, 9)]  # ... these wait
    decide.release.set()
    assert await first == 20
    assert await asyncio.gather(*crowd) == [30, 40, 50, 60, 70, 80]
    assert decide.batches == [[1], [2], [3, 4, 5, 6], [7, 8]]  # in order, at most 4 at a time
    assert batcher.batches == 4
    await batcher.close()


async def test_a_failed_decision_fails_its_whole_batch_and_only_it() -> None:
    decide = Decider()
    batcher = Batcher(decide)
    blocker = await _blocked_on_first(batcher, decide, 0)
    spoiled = [asyncio.ensure_future(batcher.submit(n)) for n in (5, -1)]
    decide.release.set()
    assert await blocker == 0
    for future in spoiled:
        with pytest.raises(ValueError, match="spoils"):
            await future
    assert await batcher.submit(7) == 70  # the next batch is unaffected
    await batcher.close()


async def test_a_result_nobody_waits_for_goes_to_orphaned() -> None:
    decide = Decider()
    orphans: list[int] = []
    orphan_seen = asyncio.Event()

    async def orphaned(result: int) -> None:
        orphans.append(result)
        orphan_seen.set()

    batcher = Batcher(decide, orphaned=orphaned)
    decide.release.clear()
    waiting = asyncio.ensure_future(batcher.submit(3))
    await asyncio.sleep(0)
    waiting.cancel()  # say the caller's timeout fired while the transaction ran
    decide.release.set()
    await asyncio.wait_for(orphan_seen.wait(), 5)
    await batcher.close()
    assert orphans == [30]


async def test_close_cancels_what_is_still_waiting() -> None:
    decide = Decider()
    batcher = Batcher(decide)
    deciding = await _blocked_on_first(batcher, decide, 1)
    queued = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    await batcher.close()
    for future in (deciding, queued):
        with pytest.raises(asyncio.CancelledError):
            await future
