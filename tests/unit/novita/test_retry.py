"""RetryPolicy arithmetic and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.novita.retry import RetryPolicy, parse_retry_after

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
