"""POLL_STRATEGY: parsing and the planner each spelling builds."""

from __future__ import annotations

from bot.config import settings_from_mapping
from bot.jobs.polling.planner import AdaptivePlanner, ExponentialBackoff, FixedInterval
from bot.jobs.polling.strategies import poll_strategy


def test_default_is_the_adaptive_planner_with_the_configured_bounds() -> None:
    settings = settings_from_mapping({"POLL_MIN_INTERVAL_SECONDS": "0.2"})
    assert settings.poll_strategy == "adaptive"
    planner = poll_strategy(settings.poll_strategy, 0.2, 7.0)
    assert planner == AdaptivePlanner(min_interval=0.2, max_interval=7.0)


def test_fixed_and_backoff_spellings_build_the_classic_pollers() -> None:
    assert poll_strategy("fixed:0.5", 0.5, 10) == FixedInterval(0.5)
    assert poll_strategy(" Backoff:2:1.3:5 ", 0.5, 10) == ExponentialBackoff(2.0, 1.3, 5.0)
