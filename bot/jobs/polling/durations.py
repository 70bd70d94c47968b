"""How long jobs take, learned from what the polls actually saw.

A finished job never reveals its duration, only a bracket: it finished after the last poll that
saw it pending and no later than the first poll that saw it done. Imputing a point inside that
bracket from the current forecast feeds the forecast's own error back into it, so instead every
recent bracket is kept and the distribution is fitted to all of them jointly:

* generation time is log-normal; its log-median is a line in log-pixels shared by every size
  (so a size never seen borrows from the others) plus a per-bucket offset shrunk towards that
  line, with one shared log-spread;
* the fit is a maximum a posteriori estimate under interval censoring (EM over truncated
  normals), with Huber weights so one odd job cannot swing it, and recency weights (half-life
  `_HALF_LIFE_JOBS` finished jobs) so drift is followed;
* when two finishes in a row land outside the predicted band on the same side, the model calls
  it a regime change and discounts everything before them, so it re-learns within a job or two;
* the estimate handed to the planner is *predictive*: its spread includes how unsure the fit
  still is, so a fresh model (or one just surprised) asks for exploratory, denser polling;
* queue time at Novita (`TASK_STATUS_QUEUED`) is learned separately: how often a job queues and,
  from the (last QUEUED, first PROCESSING] brackets, for how long.

Pure (no I/O, no clock) and cheap: at most `MAX_BRACKETS` brackets, a warm-started fit of a few
milliseconds after each job. `to_dict()`/`from_dict()` let storage persist it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot.imaging import ImageSize
from bot.jobs.polling.censored_fit import (
    MAX_BRACKETS,
    PRIOR_FIT,
    PRIOR_QUEUE_FIT,
    Bracket,
    LogLinearFit,
    dump_fit,
    fit_brackets,
    load_brackets,
    load_fit,
)

# (megapixels, seconds): about 12 s at 512², 20 s at 1024², 30 s at 1536² for Qwen-Image.
_PRIOR_POINTS: Final = (
    (512 * 512 / 1e6, 12.0),
    (1024 * 1024 / 1e6, 20.0),
    (1536 * 1536 / 1e6, 30.0),
)
_REFERENCE_PIXELS: Final = 1024 * 1024
_BUCKET_MEGAPIXELS: Final = 0.25
_MIN_SECONDS: Final = 1.0
_MAX_PREDICTIVE_SPREAD: Final = 2.5

# Queue time given that a job queued, and how often that happens.
_PRIOR_QUEUE_SHARE: Final = 0.1
_PRIOR_QUEUE_SHARE_WEIGHT: Final = 3.0

_HALF_LIFE_JOBS: Final = 12.0       # a finish 12 jobs ago counts half
_SURPRISE_Z: Final = 2.33           # outside the central 98 % band of the forecast
_REGIME_DISCOUNT: Final = 0.05      # weight left to brackets from before a regime change
_PRIOR_OUTLIER_SHARE: Final = 0.05
_OUTLIER_SHARE_WEIGHT: Final = 4.0
_FORMAT_VERSION: Final = 2


def prior_generation_seconds(size: ImageSize) -> float:
    """Linear interpolation (and extrapolation) of the prior through megapixel anchor points."""
    megapixels = size.pixels / 1e6
    xs = [point[0] for point in _PRIOR_POINTS]
    index = min(max(bisect.bisect_left(xs, megapixels), 1), len(xs) - 1)
    (x0, y0), (x1, y1) = _PRIOR_POINTS[index - 1], _PRIOR_POINTS[index]
    return max(_MIN_SECONDS, y0 + (y1 - y0) * (megapixels - x0) / (x1 - x0))


def bucket_key(size: ImageSize) -> str:
    """Sizes within a quarter megapixel of each other share a per-size offset."""
    bucket = round(size.pixels / 1e6 / _BUCKET_MEGAPIXELS) * _BUCKET_MEGAPIXELS
    return f"{bucket:.2f}"


def _log_pixels(pixels: float) -> float:
    return math.log(pixels / _REFERENCE_PIXELS)


@dataclass(frozen=True)
class DurationEstimate:
    """Expected seconds from submit to image ready, split into queue and generation.

    `generation_mean`/`generation_spread` are the mean and standard deviation of the predictive
    log-normal (fit uncertainty included); `outlier_share` is how often recent finishes fell
    outside the predicted band, which the planner reserves for a broad tail.
    """

    queue_mean: float
    queue_spread: float
    generation_mean: float
    generation_spread: float
    observations: int  # finished jobs of this size bucket behind the figures (0 = borrowed)
    outlier_share: float = _PRIOR_OUTLIER_SHARE

    @property
    def total_mean(self) -> float:
        return self.queue_mean + self.generation_mean

    @property
    def total_spread(self) -> float:
        return math.hypot(self.queue_spread, self.generation_spread)

    @property
    def generation_log_params(self) -> tuple[float, float]:
        """(log-median, log-spread) of the log-normal with these moments."""
        return log_normal_params(self.generation_mean, self.generation_spread)


def log_normal_params(mean: float, spread: float) -> tuple[float, float]:
    """The log-normal (mu, sigma) whose mean and standard deviation are the given ones."""
    mean = max(mean, 1e-6)
    sigma_squared = math.log1p((max(spread, 0.0) / mean) ** 2)
    return math.log(mean) - sigma_squared / 2, max(math.sqrt(sigma_squared), 1e-6)








@dataclass
class DurationModel:
    """Learns generation time (per size, pooled by pixel count) and queue time from brackets."""

    brackets: list[Bracket] = field(default_factory=list)
    queue_brackets: list[Bracket] = field(default_factory=list)
    queued_flags: list[tuple[int, bool]] = field(default_factory=list)  # (seq, seen queued)
    seq: int = 0
    regime_start: int = 0   # brackets recorded before this seq are discounted
    fit: LogLinearFit = PRIOR_FIT
    queue_fit: LogLinearFit = PRIOR_QUEUE_FIT

    # --- what the planner reads -----------------------------------------------------------------

    def expected(self, size: ImageSize) -> DurationEstimate:
        key = bucket_key(size)
        mu, sigma = self.generation_log_normal(size)
        mean = math.exp(mu + sigma**2 / 2)
        spread = mean * math.sqrt(math.expm1(sigma**2))
        queue_mean, queue_spread = self._queue_moments()
        return DurationEstimate(
            queue_mean=queue_mean,
            queue_spread=queue_spread,
            generation_mean=max(mean, 1e-3),
            generation_spread=spread,
            observations=sum(1 for b in self.brackets if b.bucket == key),
            outlier_share=self.outlier_share(),
        )

    def generation_log_normal(self, size: ImageSize) -> tuple[float, float]:
        """Predictive (log-median, log-spread) of generation time for a size."""
        key = bucket_key(size)
        x = _log_pixels(size.pixels)
        bucket = key if key in self.fit.offsets else None
        mu = self.fit.log_median(bucket, x)
        variance = self.fit.log_spread**2 + self.fit.median_variance(key, x)
        return mu, min(math.sqrt(variance), _MAX_PREDICTIVE_SPREAD)

    def outlier_share(self) -> float:
        """Recency-weighted share of recent finishes that fell outside their predicted band."""
        weight = surprised = 0.0
        for bracket in self.brackets[-16:]:
            w = self._recency(bracket.seq)
            weight += w
            surprised += w * (bracket.surprise != 0)
        prior = _PRIOR_OUTLIER_SHARE * _OUTLIER_SHARE_WEIGHT
        return (prior + surprised) / (_OUTLIER_SHARE_WEIGHT + weight)

    def queue_share(self) -> float:
        weight = queued = 0.0
        for seq, seen in self.queued_flags:
            w = self._recency(seq)
            weight += w
            queued += w * seen
        prior = _PRIOR_QUEUE_SHARE * _PRIOR_QUEUE_SHARE_WEIGHT
        return (prior + queued) / (_PRIOR_QUEUE_SHARE_WEIGHT + weight)

    def _queue_moments(self) -> tuple[float, float]:
        """Mean and sd of queue time over all jobs (most wait nothing)."""
        share = self.queue_share()
        mu = self.queue_fit.intercept
        sigma_squared = self.queue_fit.log_spread**2 + self.queue_fit.covariance[0][0]
        mean_queued = math.exp(mu + sigma_squared / 2)
        second_moment = math.exp(2 * mu + 2 * sigma_squared)
        mean = share * mean_queued
        variance = share * second_moment - mean**2
        return mean, math.sqrt(max(variance, 0.0))

    # --- learning -------------------------------------------------------------------------------

    def record(
        self,
        size: ImageSize,
        finished_after: float,
        finished_by: float,
        *,
        started_after: float = 0.0,
        started_by: float = 0.0,
        queued: bool = False,
    ) -> None:
        """Record one finished job from what the polls saw (seconds since submit).

        It finished in (finished_after, finished_by] and generation started in
        (started_after, started_by] (both 0 when it was never seen queued), so its generation
        time lies in (finished_after - started_by, finished_by - started_after].
        """
        values = (finished_after, finished_by, started_after, started_by)
        if not all(math.isfinite(v) and v >= 0 for v in values) or finished_by <= 0:
            return
        lower = max(0.0, finished_after - started_by)
        upper = finished_by - started_after
        if upper <= 0:
            return
        self.seq += 1
        self.queued_flags = [*self.queued_flags[-(MAX_BRACKETS - 1):], (self.seq, queued)]
        if queued and started_by > 0:
            queue = Bracket("queue", 0.0, started_after, started_by, self.seq)
            self.queue_brackets = [*self.queue_brackets[-(MAX_BRACKETS - 1):], queue]
            self.queue_fit = fit_brackets(self.queue_brackets, self.queue_fit, self._weights(
                self.queue_brackets), pooled=False)
        if upper > 0:
            self._add_generation(size, lower, upper)

    def observe(
        self,
        size: ImageSize,
        generation_seconds: float,
        queue_seconds: float | None = None,
        *,
        precise: bool = True,
    ) -> None:
        """Record a job whose generation time is known (demo seeding, imports): a point bracket.

        `precise=False` widens it to ±10 %, for a figure that is itself only a guess.
        """
        if not math.isfinite(generation_seconds) or generation_seconds <= 0:
            return
        half_width = 0.0 if precise else 0.1 * generation_seconds
        queued = queue_seconds is not None and math.isfinite(queue_seconds) and queue_seconds > 0
        start = queue_seconds if queued and queue_seconds is not None else 0.0
        self.record(
            size,
            start + generation_seconds - half_width,
            start + generation_seconds + half_width,
            started_after=start,
            started_by=start,
            queued=queued,
        )

    def _add_generation(self, size: ImageSize, lower: float, upper: float) -> None:
        key = bucket_key(size)
        x = _log_pixels(size.pixels)
        surprise = self._surprise(key, x, lower, upper)
        bracket = Bracket(key, x, lower, upper, self.seq, surprise)
        previous = self.brackets[-1] if self.brackets else None
        self.brackets = [*self.brackets[-(MAX_BRACKETS - 1):], bracket]
        if surprise and previous is not None and previous.surprise == surprise:
            # Two finishes in a row beyond the band on the same side: the upstream changed.
            self.regime_start = previous.seq
        self.fit = fit_brackets(self.brackets, self.fit, self._weights(self.brackets), pooled=True)

    def _surprise(self, key: str, x: float, lower: float, upper: float) -> int:
        bucket = key if key in self.fit.offsets else None
        mu = self.fit.log_median(bucket, x)
        band = _SURPRISE_Z * math.sqrt(self.fit.log_spread**2 + self.fit.median_variance(key, x))
        if lower > 0 and math.log(lower) > mu + band:
            return 1
        if math.log(upper) < mu - band:
            return -1
        return 0

    def _recency(self, seq: int) -> float:
        weight: float = 0.5 ** ((self.seq - seq) / _HALF_LIFE_JOBS)
        return weight * (_REGIME_DISCOUNT if seq < self.regime_start else 1.0)

    def _weights(self, brackets: Sequence[Bracket]) -> list[float]:
        return [self._recency(b.seq) for b in brackets]

    # --- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def dump(bracket: Bracket) -> list[float | int | str]:
            return [bracket.bucket, bracket.log_pixels, bracket.lower, bracket.upper,
                    bracket.seq, bracket.surprise]

        return {
            "version": _FORMAT_VERSION,
            "seq": self.seq,
            "regime_start": self.regime_start,
            "brackets": [dump(b) for b in self.brackets],
            "queue_brackets": [dump(b) for b in self.queue_brackets],
            "queued_flags": [[seq, seen] for seq, seen in self.queued_flags],
            "fit": dump_fit(self.fit),
            "queue_fit": dump_fit(self.queue_fit),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DurationModel:
        """Rebuild a saved model. Version 1 (moving averages) is converted to a few brackets per
        size; anything unreadable falls back to the prior rather than failing start-up."""
        version = data.get("version")
        if version == 1:
            return _from_version_1(data)
        if version != _FORMAT_VERSION:
            return cls()
        try:
            model = cls(
                brackets=load_brackets(data.get("brackets")),
                queue_brackets=load_brackets(data.get("queue_brackets")),
                queued_flags=[(int(seq), bool(seen)) for seq, seen in
                              data.get("queued_flags", [])][-MAX_BRACKETS:],
                seq=int(data.get("seq", 0)),
                regime_start=int(data.get("regime_start", 0)),
            )
            fit, queue_fit = load_fit(data.get("fit")), load_fit(data.get("queue_fit"))
        except (TypeError, ValueError, KeyError, IndexError):
            return cls()
        # A stored fit is restored as it was (the live model's exact state); a missing or damaged
        # one is refitted from the brackets.
        model.fit = fit or fit_brackets(model.brackets, PRIOR_FIT, model._weights(model.brackets),
                                pooled=True)
        model.queue_fit = queue_fit or fit_brackets(model.queue_brackets, PRIOR_QUEUE_FIT,
                                            model._weights(model.queue_brackets), pooled=False)
        return model


# --- persistence helpers ------------------------------------------------------------------------


def _from_version_1(data: Mapping[str, Any]) -> DurationModel:
    """Convert the old moving-average format: each learned bucket becomes up to three ±15 %
    brackets around its mean (old means could be biased by imputation, so they are held loosely)."""
    model = DurationModel()
    buckets = data.get("buckets")
    if not isinstance(buckets, Mapping):
        return model
    brackets: list[Bracket] = []
    for key, raw in sorted(buckets.items()):
        try:
            mean, count, megapixels = float(raw["mean"]), int(raw["count"]), float(key)
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(mean) and mean > 0 and math.isfinite(megapixels)
                and megapixels > 0 and count > 0):
            continue
        for _ in range(min(count, 3)):
            model.seq += 1
            brackets.append(Bracket(str(key), _log_pixels(megapixels * 1e6), mean * 0.85,
                                    mean * 1.15, model.seq))
    model.brackets = brackets[-MAX_BRACKETS:]
    model.fit = fit_brackets(model.brackets, PRIOR_FIT, model._weights(model.brackets), pooled=True)
    return model
