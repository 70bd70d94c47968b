"""RetryPolicy arithmetic, Retry-After parsing and the submit rate limiter, on a fake clock."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.novita.ratelimit import SubmitRateLimiter
from bot.novita.retry import RetryPolicy, parse_retry_after
from fakes.clock import GatedClock, ManualClock

pytestmark = pytest.mark.timeout(30)

# --- RetryPolicy ---------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, multiplier=2.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_huge_retry_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, multiplier=10.0, jitter=0.0)
    assert policy.delay(10_000) == 5.0


@given(
    retry_number=st.integers(min_value=1, max_value=50),
    seed=st.integers(min_value=0, max_value=2**32),
    jitter=st.floats(min_value=0.0, max_value=1.0),
)
def test_jittered_delay_stays_within_its_band(retry_number: int, seed: int, jitter: float) -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=10.0, jitter=jitter)
    ceiling = policy.backoff_ceiling(retry_number)
    delay = policy.delay(retry_number, rng=random.Random(seed))
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9


def test_full_jitter_spreads_delays() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=1.0, jitter=1.0)
    rng = random.Random(42)
    delays = [policy.delay(1, rng=rng) for _ in range(200)]
    assert min(delays) < 0.1 and max(delays) > 0.9  # not lock-step


def test_retry_after_wins_over_backoff() -> None:
    policy = RetryPolicy(base_delay=0.5, jitter=1.0)
    assert policy.delay(3, retry_after=12.0) == 12.0
    assert policy.delay(1, retry_after=-4.0) == 0.0


def test_allows_retry_after_up_to_the_limit() -> None:
    policy = RetryPolicy(max_retry_after=30.0)
    assert policy.allows_retry_after(None)
    assert policy.allows_retry_after(30.0)
    assert not policy.allows_retry_after(30.1)


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"base_delay": -1}, {"max_delay": -1}, {"multiplier": 0.5},
     {"jitter": 1.5}, {"jitter": -0.1}, {"max_retry_after": -1}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_frozen() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.attempts = 9  # type: ignore[misc]


# --- Retry-After ---------------------------------------------------------------------------

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Sun, 01 Jun 2025 12:00:30 GMT", 30.0),
        ("Sunday, 01-Jun-25 12:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Sun, 01 Jun 2025 11:00:00 GMT", 0.0),  # in the past
        ("Sun, 01 Jun 2025 12:00:10", 10.0),  # zone omitted: HTTP dates are GMT
        (None, None),
        ("", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=lambda: NOW) == seconds


# --- SubmitRateLimiter ---------------------------------------------------------------------


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
