from __future__ import annotations

import asyncio
import io
import os

import pytest
from PIL import Image

from bot.interactions.transport.delivery import (
    EditBudget,
    ImageTooLargeForDiscord,
    ThrottledProgress,
    fit_to_limit,
    fit_to_limit_sync,
)
from fakes.clock import GatedClock, ManualClock


async def test_throttle_edits_only_changes_and_not_too_often() -> None:
    recorder = Recorder(ManualClock())
    throttle = unslept_throttle_for(recorder)
    assert await throttle.offer(1)
    assert not await throttle.offer(5)  # same signature
    assert not await throttle.offer(15)  # changed, but only 0 s since the last edit
    recorder.clock.now = 2.5
    assert await throttle.offer(15)
    assert recorder.edits == [1, 15]
    assert throttle.seconds_until_allowed() == pytest.approx(2.0)


async def test_throttle_survives_a_failing_edit() -> None:
    async def edit(value: int) -> None:
        raise RuntimeError("discord said no")

    throttle: ThrottledProgress[int] = ThrottledProgress(edit, lambda v: v, 0.0)
    assert not await throttle.offer(1)


class Recorder:
    """An edit callback that lets a test wait for the n-th edit; it sleeps on its manual clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sleep = clock.sleep
        self.edits: list[int] = []
        self.changed = asyncio.Event()

    async def edit(self, value: int) -> None:
        self.edits.append(value)
        self.changed.set()

    async def wait_edits(self, count: int) -> list[int]:
        async with asyncio.timeout(2):
            while len(self.edits) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.edits


def throttle_for(recorder: Recorder) -> ThrottledProgress[int]:
    return ThrottledProgress(
        recorder.edit, lambda v: v // 10, 2.0, recorder.clock, sleep=recorder.sleep
    )


def unslept_throttle_for(recorder: Recorder) -> ThrottledProgress[int]:
    """A throttle whose held-back flush waits on the real loop: it never fires in these tests."""
    return ThrottledProgress(recorder.edit, lambda v: v // 10, 2.0, recorder.clock)


async def test_throttle_sends_a_held_back_update_once_the_interval_passed() -> None:
    """A queue position that then stays put must still reach the message."""
    recorder = Recorder(ManualClock())
    throttle = throttle_for(recorder)
    assert await throttle.offer(1)
    recorder.clock.now = 0.5
    assert not await throttle.offer(15)  # too early: held back, not lost
    assert await recorder.wait_edits(2) == [1, 15]
    assert recorder.clock.sleeps == [pytest.approx(1.5)]
    await throttle.close()


async def test_throttle_sends_only_the_newest_held_back_update() -> None:
    recorder = Recorder(ManualClock())
    throttle = throttle_for(recorder)
    assert await throttle.offer(1)
    assert not await throttle.offer(15)
    assert not await throttle.offer(25)
    assert await recorder.wait_edits(2) == [1, 25]
    await throttle.close()


async def test_throttle_forgets_a_held_back_update_that_the_message_already_shows() -> None:
    recorder = Recorder(ManualClock())
    throttle = throttle_for(recorder)
    assert await throttle.offer(1)
    assert not await throttle.offer(15)
    assert not await throttle.offer(2)  # back to what is shown: nothing to send later
    await asyncio.sleep(0.01)
    assert recorder.edits == [1]
    await throttle.close()


async def test_throttle_close_drops_pending_updates_and_refuses_new_ones() -> None:
    recorder = Recorder(ManualClock())
    throttle = unslept_throttle_for(recorder)
    assert await throttle.offer(1)
    assert not await throttle.offer(15)  # would be sent in 2 s (real time)
    await throttle.close()  # returns at once: the pending flush is cancelled
    assert not await throttle.offer(35)
    assert recorder.edits == [1]


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


async def test_edit_budget_serves_waiters_in_order_at_its_rate() -> None:
    clock = ManualClock()
    recorder = Recorder(clock)
    budget = EditBudget(2.0, burst=1, clock=clock, sleep=recorder.sleep)
    assert budget.try_take()
    assert not budget.try_take()  # the one token is spent
    order: list[int] = []

    async def wait_turn(n: int) -> None:
        await budget.take()
        order.append(n)

    await asyncio.gather(*(wait_turn(n) for n in range(3)))
    assert order == [0, 1, 2]
    assert clock.now == pytest.approx(1.5)  # three more tokens at 2 per second
    assert EditBudget(0).try_take() and EditBudget(0).unlimited


async def test_try_take_does_not_jump_the_queue() -> None:
    clock = GatedClock()
    budget = EditBudget(1.0, burst=1, clock=clock, sleep=clock.sleep)
    assert budget.try_take()
    waiter = asyncio.create_task(budget.take())
    await asyncio.sleep(0)
    clock.now += 5  # tokens have refilled, but someone is already waiting
    assert not budget.try_take()
    clock.release()
    await waiter


async def test_jobs_share_the_budget_and_held_back_progress_still_arrives() -> None:
    clock = ManualClock()
    recorder = Recorder(clock)
    budget = EditBudget(1.0, burst=1, clock=clock, sleep=recorder.sleep)
    first = ThrottledProgress(recorder.edit, lambda v: v, 0.0, clock, recorder.sleep, budget)
    second = ThrottledProgress(recorder.edit, lambda v: v, 0.0, clock, recorder.sleep, budget)
    assert await first.offer(1)
    assert not await second.offer(2)  # over the bot-wide budget: held back, not lost
    assert await recorder.wait_edits(2) == [1, 2]
    assert clock.now >= 1.0  # it waited for the next token
    await first.close()
    await second.close()


async def test_progress_never_takes_the_last_edit_slot_the_result_needs() -> None:
    """Against the fake Discord's own per-message edit accounting (5 edits per 5 s, 429 past
    it): progress offered far faster than Discord allows, and a final edit at any moment after
    any progress edit, never meets a 429 — even with no interval between progress edits."""
    from fakes.clock import ManualClock, OffsetClock
    from fakes.discord.limits import DiscordAPIError
    from fakes.discord.state import FakeDiscordConfig, FakeDiscordState

    clock = ManualClock(start=100.0)
    discord = FakeDiscordState(FakeDiscordConfig(), OffsetClock(clock))
    message_id = 1
    progress_edits: list[float] = []

    async def edit(value: int) -> None:
        discord.take_edit(message_id)  # raises the fake's 429 when the bucket is empty
        progress_edits.append(clock.now)

    throttle: ThrottledProgress[int] = ThrottledProgress(
        edit, lambda v: v, 0.0, clock, sleep=clock.sleep
    )
    for value in range(60):  # a new state every 0.1 s for 6 s
        await throttle.offer(value)
        clock.advance(0.1)
    assert len(progress_edits) >= 4
    await throttle.close()
    try:
        discord.take_edit(message_id)  # the result, delivered at once
    except DiscordAPIError as error:  # pragma: no cover - the failure this test guards
        pytest.fail(f"the final edit met a {error.status}")
    assert discord.rate_limited_count == 0
    # Any 5.25 s holds at most 4 progress edits: the fifth slot stayed free.
    for first, fifth in zip(progress_edits, progress_edits[4:], strict=False):
        assert fifth - first >= 5.0
