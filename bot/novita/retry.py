"""`RetryPolicy`: how long to wait before trying a failed request again.

Exponential backoff with (by default full) jitter, so a thousand jobs hit by the same outage do
not retry in lock-step; a server's `Retry-After` wins over the computed delay.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` counts every try, the first included (1 = never retry).

    The un-jittered delay before retry number `n` (1-based) is
    `min(max_delay, base_delay * multiplier ** (n - 1))`. `jitter` is the fraction of that delay
    that is randomised: 1.0 is "full jitter" (uniform in [0, delay]), 0.0 is a fixed delay.
    A `Retry-After` above `max_retry_after` is not waited out: the caller gives up instead.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: float = 1.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def backoff_ceiling(self, retry_number: int) -> float:
        """The delay before retry `retry_number` (1-based) before jitter is applied."""
        exponent = max(0, retry_number - 1)
        try:
            raw = self.base_delay * self.multiplier**exponent
        except OverflowError:
            raw = math.inf
        return min(self.max_delay, raw)

    def delay(
        self,
        retry_number: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait before retry `retry_number`; an upstream `retry_after` wins."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = self.backoff_ceiling(retry_number)
        spread = ceiling * self.jitter
        draw = (rng or random).random()
        return ceiling - spread + spread * draw

    def allows_retry_after(self, retry_after: float | None) -> bool:
        """False when the server asks us to wait longer than we are willing to."""
        return retry_after is None or retry_after <= self.max_retry_after


def parse_retry_after(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Parse a `Retry-After` header: delta-seconds or an HTTP date. None if absent or garbage."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return max(0.0, seconds)
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; some servers omit the zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())
