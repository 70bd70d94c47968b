"""When to poll a task next.

A poll costs a request against Novita and tells us nothing until the task is done, so the
adaptive planner spends polls where a finish is likely, by an explicit cost model (expected
detection delay + λ · expected polls, see `AdaptivePlanner`). The finish-time distribution comes
from the learned `DurationEstimate`, re-anchored when the task is seen moving from QUEUED to
PROCESSING; Novita's `eta`/`progress_percent` take over when non-zero (Qwen-Image sends 0, so
nothing depends on them).

Planners are strategies behind one small protocol so the poll benchmark can run the classic
fixed-interval and exponential-backoff pollers through exactly the same engine code.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final, Protocol

from bot.jobs.polling.censored_fit import normal_survival
from bot.jobs.polling.durations import DurationEstimate
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
    upstream_percent: float = 0.0       # Novita's `progress_percent` when non-zero


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
class FinishDistribution:
    """When a task will finish (seconds since submit), given what its polls have shown.

    Generation starts at one of `starts` (equally likely; more than one when a QUEUED →
    PROCESSING change was only bracketed) and then takes a log-normal time; a `tail_share` of
    jobs follow a much broader log-normal instead, so a job that outruns the forecast keeps being
    polled at a sane rate rather than ever faster (a narrow log-normal's hazard keeps rising).
    """

    starts: tuple[float, ...]
    log_median: float
    log_spread: float
    tail_share: float
    tail_log_spread: float

    def survival(self, t: float, *, with_tail: bool = True) -> float:
        """P(not finished by t); `with_tail=False` asks the model's own belief only."""
        tail_share = self.tail_share if with_tail else 0.0
        total = 0.0
        for start in self.starts:
            run = t - start
            if run <= 0:
                total += 1.0
                continue
            log_run = math.log(run)
            main = normal_survival((log_run - self.log_median) / self.log_spread)
            tail = normal_survival((log_run - self.log_median) / self.tail_log_spread)
            total += (1 - tail_share) * main + tail_share * tail
        return total / len(self.starts)


def finish_distribution(state: PollState, estimate: DurationEstimate) -> FinishDistribution:
    """The finish-time distribution for the planner (upstream eta/progress win when non-zero)."""
    log_median, log_spread = estimate.generation_log_params
    tail_share = min(0.5, max(0.02, estimate.outlier_share))
    tail_spread = max(_TAIL_LOG_SPREAD, 2 * log_spread)
    remaining = _upstream_remaining(state)
    if remaining is not None:
        return FinishDistribution((state.elapsed,), math.log(max(remaining, 0.05)),
                                  _UPSTREAM_LOG_SPREAD, tail_share, tail_spread)
    if state.last_queued_at is not None and state.first_processing_at is not None:
        # Started somewhere between the last QUEUED poll and the first PROCESSING one.
        low, high = state.last_queued_at, state.first_processing_at
        starts = tuple(low + (high - low) * (k + 0.5) / 4 for k in range(4))
    elif state.status is TaskStatus.QUEUED:
        starts = (state.elapsed,)
    else:
        starts = (0.0,)
    return FinishDistribution(starts, log_median, log_spread, tail_share, tail_spread)


def _upstream_remaining(state: PollState) -> float | None:
    """Seconds left according to Novita, when it says anything (Qwen-Image usually sends 0)."""
    if state.upstream_eta > 0:
        return state.upstream_eta
    if 0 < state.upstream_percent < 100 and state.status is TaskStatus.PROCESSING:
        started = state.first_processing_at if state.last_queued_at is not None else 0.0
        running = state.elapsed - (started or 0.0)
        if running > 0:
            return running * (100 - state.upstream_percent) / state.upstream_percent
    return None


_REFERENCE_SECONDS: Final = 20.0  # the job length at which a poll costs `delay_per_poll`
_TAIL_LOG_SPREAD: Final = 1.0      # the "something changed" tail: ×/÷ 2.7 at one spread
_UPSTREAM_LOG_SPREAD: Final = 0.25  # how far we trust an upstream eta


@dataclass(frozen=True)
class AdaptivePlanner:
    """Poll where a finish is likely, by an explicit cost: delay + λ·polls.

    Each poll costs `delay_per_poll` (λ) seconds of detection delay; the planner minimises the
    expected detection delay plus λ times the expected number of polls. For a gap g starting at
    t, a poll pays off if the task finishes in it (probability ≈ h·g, h the hazard rate: the
    chance of finishing now given not finished yet) and then saves ≈ g/2 of waiting; the local
    optimum is g² · h / 2 = λ, i.e. g = √(2λ/h). The planner solves g · ΔH(t, t+g) = 2λ, with ΔH
    the cumulative hazard over the gap, so a gap never jumps over a rise in the hazard.

    Consequences: sparse while a finish is implausible (gaps up to `max_interval`), dense where
    finishes cluster, and — because the forecast keeps a broad tail for surprises — a steady
    ~2 s cadence, never a runaway back-off, for a job that outruns the forecast. A fresh or
    surprised model has a wide forecast, so the same rule explores: moderate gaps over a wide
    range instead of betting on the prior. Past the forecast median the gap is capped at
    `late_max_interval` so a late job is seen within it. Every delay stays within
    [min_interval, max_interval].

    λ = 0.06 s at a 20 s job (one poll is worth 60 ms of delay), scaled by 20 s / median: the
    real budget is requests per second in flight, and a long job holds its slot longer. Lower λ
    buys lower delay with more polls (0.5 s everywhere is λ → 0); bench/README.md has figures.
    """

    min_interval: float = 0.5
    max_interval: float = 10.0
    late_max_interval: float = 2.5
    delay_per_poll: float = 0.06
    long_gap_mass: float = 0.003  # most finish probability one gap above late_max_interval may span
    queued_share: float = 0.15   # while QUEUED, poll every this share of the generation median
    jitter: float = 0.1

    def next_delay(self, state: PollState, estimate: DurationEstimate, rng: random.Random) -> float:
        if state.status is TaskStatus.QUEUED and _upstream_remaining(state) is None:
            median = math.exp(estimate.generation_log_params[0])
            return self._clamp(self._jittered(median * self.queued_share, rng))
        finish = finish_distribution(state, estimate)
        now = state.elapsed
        survival_now = finish.survival(now)
        late_cap = max(self.min_interval, self.late_max_interval)
        cap = self.max_interval
        if survival_now < 0.5:
            cap = min(cap, late_cap)
        gap = self._cost_optimal_gap(finish, now, survival_now, cap)
        if gap > late_cap:
            gap = self._tail_guarded(finish, now, gap, late_cap)
        return self._clamp(min(self._jittered(gap, rng), cap))

    def _tail_guarded(self, finish: FinishDistribution, now: float, gap: float,
                      late_cap: float) -> float:
        """Longest gap ≤ `gap` whose finishes seen later than `late_cap` are a sliver.

        Only a finish in the first (gap − late_cap) seconds of a gap waits longer than
        `late_cap`; that mass (under the model's own belief, not the surprise tail) is held to
        `long_gap_mass`, so the slowest-seen 1 % of jobs still wait at most about `late_cap`.
        """
        start = finish.survival(now, with_tail=False)

        def mass_seen_late(candidate: float) -> float:
            return start - finish.survival(now + candidate - late_cap, with_tail=False)

        if mass_seen_late(gap) <= self.long_gap_mass:
            return gap
        low, high = late_cap, gap
        while high - low > 0.05:
            middle = (low + high) / 2
            if mass_seen_late(middle) <= self.long_gap_mass:
                low = middle
            else:
                high = middle
        return low

    def poll_price(self, finish: FinishDistribution) -> float:
        """λ for this job: `delay_per_poll` at a 20 s job, inversely proportional to its median."""
        median = max(math.exp(finish.log_median), self.min_interval)
        return self.delay_per_poll * _REFERENCE_SECONDS / median

    def _cost_optimal_gap(self, finish: FinishDistribution, now: float, survival_now: float,
                          cap: float) -> float:
        """Smallest g in [min_interval, cap] with g · ΔH(now, now + g) ≥ 2λ (bisection)."""
        target = 2 * self.poll_price(finish)
        log_now = math.log(max(survival_now, 1e-300))

        def cost_balance(gap: float) -> float:
            hazard = log_now - math.log(max(finish.survival(now + gap), 1e-300))
            return gap * hazard

        low, high = self.min_interval, max(self.min_interval, cap)
        if cost_balance(low) >= target:
            return low
        if cost_balance(high) <= target:
            return high
        for _ in range(30):
            middle = (low + high) / 2
            if cost_balance(middle) < target:
                low = middle
            else:
                high = middle
            if high - low < 0.01:
                break
        return high

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
