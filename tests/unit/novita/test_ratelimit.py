"""The submit rate limiter (a sliding window, hold-offs, fair waiting), on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from bot.novita.ratelimit import SubmitRateLimiter
from fakes.clock import GatedClock, ManualClock

pytestmark = pytest.mark.timeout(30)

# --- RetryPolicy ---------------------------------------------------------------------------


def limiter(per_minute: int, clock: ManualClock) -> SubmitRateLimiter:
    return SubmitRateLimiter(per_minute, clock=clock, sleep=clock.sleep)


async def test_grants_up_to_the_limit_without_waiting() -> None:
    clock = ManualClock()
    rl = limiter(3, clock)
    assert [await rl.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []


async def test_the_next_caller_waits_until_the_oldest_grant_leaves_the_window() -> None:
    clock = ManualClock()
    rl = limiter(3, clock)
    for at in (0.0, 10.0, 20.0):
        clock.now = at
        await rl.acquire()
    clock.now = 30.0
    assert await rl.acquire() == pytest.approx(30.0)  # until t=60, when t=0 expires
    assert clock.now == pytest.approx(60.0)
    assert await rl.acquire() == pytest.approx(10.0)  # until t=70, when t=10 expires
    assert clock.sleeps == pytest.approx([30.0, 10.0])


async def test_window_is_sliding_not_fixed() -> None:
    clock = ManualClock()
    rl = limiter(2, clock)
    await rl.acquire()
    clock.now = 59.0
    await rl.acquire()
    clock.now = 61.0  # the first grant expired, the second has not
    assert await rl.acquire() == 0.0
    assert await rl.acquire() == pytest.approx(58.0)  # until t=59's grant expires: t=119


async def test_never_more_than_n_grants_in_any_window() -> None:
    clock = ManualClock()
    rl = limiter(5, clock)
    grants: list[float] = []
    for _ in range(40):
        await rl.acquire()
        grants.append(clock.now)
        clock.now += 1.7
    for start in grants:
        assert sum(start <= g < start + 60.0 for g in grants) <= 5


async def test_zero_means_unlimited() -> None:
    clock = ManualClock()
    rl = limiter(0, clock)
    assert rl.unlimited
    for _ in range(1000):
        assert await rl.acquire() == 0.0
    assert clock.sleeps == []


async def test_hold_off_pauses_everyone_even_when_unlimited() -> None:
    clock = ManualClock()
    rl = limiter(0, clock)
    rl.hold_off(5.0)
    rl.hold_off(2.0)  # never shortens the pause
    assert await rl.acquire() == pytest.approx(5.0)
    assert await rl.acquire() == 0.0


async def test_waiting_counts_callers_and_they_are_served_in_order() -> None:
    clock = GatedClock()
    rl = limiter(1, clock)
    await rl.acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        await rl.acquire()
        order.append(i)

    tasks = [asyncio.create_task(take(i)) for i in range(4)]
    await clock.sleeping.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert rl.waiting == 4
    clock.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert rl.waiting == 0
    assert clock.sleeps == pytest.approx([60.0] * 4)


async def test_cancelled_waiter_leaves_no_trace() -> None:
    clock = GatedClock()
    rl = limiter(1, clock)
    await rl.acquire()
    waiter = asyncio.create_task(rl.acquire())
    await clock.sleeping.wait()
    assert rl.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert rl.waiting == 0
    clock.now = 60.0  # the first grant has expired; the cancelled caller took no slot
    assert await rl.acquire() == 0.0


@pytest.mark.parametrize("kwargs", [{"per_minute": -1}, {"per_minute": 1, "window": 0}])
def test_limiter_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SubmitRateLimiter(**kwargs)  # type: ignore[arg-type]
