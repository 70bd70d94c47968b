"""Which poller a process uses: the adaptive planner, or a classic one for comparison.

`POLL_STRATEGY` exists for benchmarks (the whole-bot benchmark runs the same jobs through
Novita's SDK and CLI pollers and a back-off design beside the adaptive planner); production
keeps the default, `adaptive`.

Spellings: `adaptive`, `fixed:<seconds>`, `backoff:<initial>:<factor>:<cap>`.
"""

from __future__ import annotations

import re
from typing import Final

from bot.jobs.polling.planner import (
    AdaptivePlanner,
    ExponentialBackoff,
    FixedInterval,
    PollStrategy,
)

_NUMBER: Final = r"(\d+(?:\.\d+)?)"
_FIXED: Final = re.compile(rf"^fixed:{_NUMBER}$")
_BACKOFF: Final = re.compile(rf"^backoff:{_NUMBER}:{_NUMBER}:{_NUMBER}$")
ADAPTIVE: Final = "adaptive"


def parse_poll_strategy(spec: str) -> str:
    """`spec` normalised, or ValueError saying what is accepted."""
    text = spec.strip().lower()
    if text == ADAPTIVE:
        return text
    fixed, backoff = _FIXED.match(text), _BACKOFF.match(text)
    if fixed and float(fixed.group(1)) > 0:
        return text
    if backoff:
        initial, factor, cap = (float(backoff.group(i)) for i in (1, 2, 3))
        if initial > 0 and factor >= 1 and cap >= initial:
            return text
    raise ValueError(
        "must be adaptive, fixed:<seconds> or backoff:<initial>:<factor>:<cap> "
        "(e.g. fixed:0.5, backoff:2:1.3:5)"
    )


def poll_strategy(spec: str, min_interval: float, max_interval: float) -> PollStrategy:
    """The planner `spec` names; `adaptive` uses the configured poll interval bounds."""
    text = parse_poll_strategy(spec)
    fixed, backoff = _FIXED.match(text), _BACKOFF.match(text)
    if fixed:
        return FixedInterval(float(fixed.group(1)))
    if backoff:
        initial, factor, cap = (float(backoff.group(i)) for i in (1, 2, 3))
        return ExponentialBackoff(initial=initial, factor=factor, cap=cap)
    return AdaptivePlanner(min_interval=min_interval, max_interval=max_interval)
