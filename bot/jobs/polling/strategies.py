"""Which poller a process uses: the adaptive planner, or a classic one for comparison.

`POLL_STRATEGY` exists for benchmarks (the whole-bot benchmark runs the same jobs through
Novita's SDK and CLI pollers and a back-off design beside the adaptive planner); production
keeps the default, `adaptive`. Its spellings are parsed by `bot.config.parse_poll_strategy`.
"""

from __future__ import annotations

from bot.config import parse_poll_strategy
from bot.jobs.polling.planner import (
    AdaptivePlanner,
    ExponentialBackoff,
    FixedInterval,
    PollStrategy,
)


def poll_strategy(spec: str, min_interval: float, max_interval: float) -> PollStrategy:
    """The planner `spec` names; `adaptive` uses the configured poll interval bounds."""
    name, *numbers = parse_poll_strategy(spec).split(":")  # checked there: the figures fit
    figures = [float(number) for number in numbers]
    if name == "fixed":
        return FixedInterval(figures[0])
    if name == "backoff":
        initial, factor, cap = figures
        return ExponentialBackoff(initial=initial, factor=factor, cap=cap)
    return AdaptivePlanner(min_interval=min_interval, max_interval=max_interval)
