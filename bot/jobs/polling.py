"""When to poll a task next.

A poll costs a request against Novita and tells us nothing until the task is done, so the
adaptive planner spends polls where a finish is likely: sparse while the job cannot plausibly
be ready, dense from a little before the expected finish, and backing off (with jitter) once the
job runs well past it. The expected finish comes from the learned `DurationEstimate`,
re-anchored when the task is seen moving from QUEUED to PROCESSING; an upstream ETA is used when
Novita sends one (Qwen-Image sends 0, so nothing depends on it).

Planners are strategies behind one small protocol so the poll benchmark can run the classic
fixed-interval and exponential-backoff pollers through exactly the same engine code.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from bot.jobs.durations import DurationEstimate
from bot.novita.models import TaskStatus


@dataclass(frozen=True)
class PollState:
    """What the engine knows when choosing the next delay. Times are seconds since submit."""

    elapsed: float
    polls: int                          # polls made so far for this task
    status: TaskStatus | None = None    # last status seen; None before the first poll
    last_queued_at: float | None = None     # last poll that still said QUEUED
    first_processing_at: float | None = None  # first poll that said PROCESSING
    upstream_eta: float = 0.0           # Novita's `eta` when non-zero


class PollStrategy(Protocol):
    def next_delay(self, state: PollState, estimate: DurationEstimate, rng: random.Random) -> float:
        """Seconds to wait before the next poll."""
        ...


@dataclass(frozen=True)
class FinishForecast:
    """Expected finish time (seconds since submit) and its uncertainty."""

    mean: float
    spread: float


def forecast_finish(state: PollState, estimate: DurationEstimate) -> FinishForecast:
    """Where the finish is expected, given what the polls have shown so far."""
    gen_mean, gen_spread = estimate.generation_mean, estimate.generation_spread
    if state.upstream_eta > 0:
        eta = state.upstream_eta
        return FinishForecast(state.elapsed + eta, max(0.5, 0.15 * eta))
    if state.status is TaskStatus.QUEUED:
        # Not started yet: the earliest possible start is now.
        return FinishForecast(state.elapsed + gen_mean, gen_spread)
    started_seen = state.first_processing_at
    if started_seen is None:
        return FinishForecast(estimate.total_mean, estimate.total_spread)
    if state.last_queued_at is not None:
        # The start lies between the last QUEUED and the first PROCESSING poll.
        half_gap = max(0.0, started_seen - state.last_queued_at) / 2
        start, start_spread = state.last_queued_at + half_gap, half_gap / math.sqrt(3)
    else:
        start = min(estimate.queue_mean, started_seen)
        start_spread = min(estimate.queue_spread, started_seen / 2)
    return FinishForecast(start + gen_mean, math.hypot(gen_spread, start_spread))


@dataclass(frozen=True)
class AdaptivePlanner:
    """Sparse early, dense around the forecast finish, backing off if the job runs long.

    Before the window (`lead_spreads` spreads before the forecast mean) polls are spread in equal
    steps of at most `max_interval`, landing on the window start. Inside it the gap is
    `min_interval`; from `backoff_after` spreads past the mean it grows by `backoff_growth` per
    spread, with jitter. Every delay stays within [min_interval, max_interval].

    Why dense *from about the mean* and not earlier: a poll is worth most where a finish is
    likeliest *given it has not happened yet* (the hazard rate), which for a bell-shaped duration
    keeps rising past the mean; polls before it mostly find the job still running.
    """

    min_interval: float = 0.5
    max_interval: float = 10.0
    # Once a job runs past its forecast, cap the back-off lower than the sparse early steps:
    # early on a finish is implausible, late it is overdue, and long gaps there hurt p99.
    late_max_interval: float = 5.0
    lead_spreads: float = 0.1
    backoff_after: float = 1.0
    backoff_growth: float = 2.0
    queued_share: float = 0.15   # while QUEUED, poll every this share of the generation time
    jitter: float = 0.1

    def next_delay(self, state: PollState, estimate: DurationEstimate, rng: random.Random) -> float:
        if state.status is TaskStatus.QUEUED and state.upstream_eta <= 0:
            return self._clamp(self._jittered(estimate.generation_mean * self.queued_share, rng))
        forecast = forecast_finish(state, estimate)
        spread = max(forecast.spread, 1e-6)
        window_start = forecast.mean - self.lead_spreads * spread
        gap = window_start - state.elapsed
        if gap > self.min_interval:
            # Equal steps of at most max_interval, so no poll is wasted just short of the window.
            return self._clamp(gap / math.ceil(gap / self.max_interval))
        z = (state.elapsed - forecast.mean) / spread
        delay = self.min_interval * self.backoff_growth ** max(0.0, z - self.backoff_after)
        return self._clamp(min(self._jittered(delay, rng), self.late_max_interval))

    def _jittered(self, delay: float, rng: random.Random) -> float:
        return delay * rng.uniform(1 - self.jitter, 1 + self.jitter)

    def _clamp(self, delay: float) -> float:
        return min(max(delay, self.min_interval), self.max_interval)


@dataclass(frozen=True)
class FixedInterval:
    """Poll every `interval` seconds (Novita's Python SDK uses 0.5 s, its CLI 3 s)."""

    interval: float

    def next_delay(self, state: PollState, estimate: DurationEstimate, rng: random.Random) -> float:
        return self.interval


@dataclass(frozen=True)
class ExponentialBackoff:
    """`initial` seconds, times `factor` after each poll, capped (the best third-party design)."""

    initial: float = 2.0
    factor: float = 1.3
    cap: float = 5.0

    def next_delay(self, state: PollState, estimate: DurationEstimate, rng: random.Random) -> float:
        return min(self.cap, self.initial * self.factor ** state.polls)
