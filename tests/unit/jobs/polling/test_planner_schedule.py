"""Poll planners: forecasts, bounds, shape of the adaptive schedule, baselines."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.jobs.polling.durations import DurationEstimate
from bot.jobs.polling.planner import (
    AdaptivePlanner,
    ExponentialBackoff,
    FixedInterval,
    PollState,
    forecast_finish,
)
from bot.novita.models import TaskStatus

ESTIMATE = DurationEstimate(
    queue_mean=0.5, queue_spread=1.0, generation_mean=20.0, generation_spread=3.0, observations=5
)
PLANNER = AdaptivePlanner(min_interval=0.5, max_interval=10.0)


def schedule(planner: AdaptivePlanner, finish: float, queue_for: float = 0.0) -> list[float]:
    """Simulate polls against a task that finishes at `finish` s; returns the poll times."""
    rng = random.Random(1)
    state = PollState(elapsed=0.0, polls=0)
    times: list[float] = []
    while True:
        delay = planner.next_delay(state, ESTIMATE, rng)
        now = state.elapsed + delay
        times.append(now)
        if now >= finish:
            return times
        status = TaskStatus.QUEUED if now < queue_for else TaskStatus.PROCESSING
        state = PollState(
            elapsed=now,
            polls=len(times),
            status=status,
            last_queued_at=now if status is TaskStatus.QUEUED else state.last_queued_at,
            first_processing_at=state.first_processing_at
            or (now if status is TaskStatus.PROCESSING else None),
        )


def test_forecast_before_any_poll_is_queue_plus_generation() -> None:
    forecast = forecast_finish(PollState(elapsed=0.0, polls=0), ESTIMATE)
    assert forecast.mean == pytest.approx(20.5)
    assert forecast.spread > 3.0


def test_forecast_reanchors_on_queued_to_processing() -> None:
    state = PollState(elapsed=12.0, polls=3, status=TaskStatus.PROCESSING,
                      last_queued_at=8.0, first_processing_at=12.0)
    forecast = forecast_finish(state, ESTIMATE)
    assert forecast.mean == pytest.approx(30.0)  # started ~10 s + 20 s of generation


def test_forecast_while_queued_starts_no_earlier_than_now() -> None:
    state = PollState(elapsed=9.0, polls=2, status=TaskStatus.QUEUED, last_queued_at=9.0)
    assert forecast_finish(state, ESTIMATE).mean == pytest.approx(29.0)


def test_forecast_uses_upstream_eta_when_given() -> None:
    state = PollState(elapsed=5.0, polls=1, status=TaskStatus.PROCESSING, upstream_eta=4.0)
    assert forecast_finish(state, ESTIMATE).mean == pytest.approx(9.0)


def test_sparse_early_dense_near_the_expected_finish() -> None:
    times = schedule(PLANNER, finish=22.0)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[0] > 5.0                      # nothing to see early on
    assert max(gaps[-4:]) <= 1.0              # dense once the finish is likely (cost-optimal)
    assert times[-1] - 22.0 <= 1.0            # noticed quickly
    assert len(times) <= 12                   # vs 44 polls at a fixed 0.5 s


def test_backs_off_when_the_job_runs_long() -> None:
    times = schedule(PLANNER, finish=60.0)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    # Backs off from the dense window to a steady ~2 s, capped at late_max_interval (2.5 s) so
    # a late job is still seen quickly — not the old 5-10 s steps that made p99 ~7 s.
    assert min(gaps[-5:]) > 3 * min(gaps)
    assert max(gaps[-5:]) <= PLANNER.late_max_interval


def test_a_queue_wait_moves_the_dense_window() -> None:
    times = schedule(AdaptivePlanner(min_interval=0.5, max_interval=3.0), finish=30.0,
                     queue_for=10.0)
    dense = [t for t, prev in zip(times[1:], times, strict=False) if t - prev < 1.0]
    assert dense and min(dense) > 25.0  # not wasted around 20 s when the job started late
    assert times[-1] - 30.0 <= 1.0


@given(
    elapsed=st.floats(0, 1000),
    polls=st.integers(0, 500),
    status=st.sampled_from([None, *TaskStatus]),
    eta=st.sampled_from([0.0, 0.3, 12.0]),
    mean=st.floats(1, 120),
    spread=st.floats(0, 60),
    bounds=st.tuples(st.floats(0.05, 2), st.floats(0, 20)),
)
def test_every_delay_stays_within_the_bounds(
    elapsed: float, polls: int, status: TaskStatus | None, eta: float, mean: float,
    spread: float, bounds: tuple[float, float],
) -> None:
    low, extra = bounds
    planner = AdaptivePlanner(min_interval=low, max_interval=low + extra)
    estimate = DurationEstimate(0.5, 1.0, mean, spread, 0)
    state = PollState(elapsed=elapsed, polls=polls, status=status, upstream_eta=eta,
                      first_processing_at=elapsed / 2 if status else None)
    delay = planner.next_delay(state, estimate, random.Random(0))
    assert low - 1e-9 <= delay <= low + extra + 1e-9


def test_baselines() -> None:
    rng = random.Random(0)
    assert FixedInterval(3.0).next_delay(PollState(5.0, 2), ESTIMATE, rng) == 3.0
    backoff = ExponentialBackoff(2.0, 1.3, 5.0)
    delays = [backoff.next_delay(PollState(0.0, n), ESTIMATE, rng) for n in range(8)]
    assert delays[0] == 2.0 and delays[1] == pytest.approx(2.6)
    assert delays == sorted(delays) and delays[-1] == 5.0
