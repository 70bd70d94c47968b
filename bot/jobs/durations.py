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

Pure (no I/O, no clock) and cheap: at most `_MAX_BRACKETS` brackets, a warm-started fit of a few
milliseconds after each job. `to_dict()`/`from_dict()` let storage persist it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot.imaging import ImageSize

# (megapixels, seconds): about 12 s at 512², 20 s at 1024², 30 s at 1536² for Qwen-Image.
_PRIOR_POINTS: Final = (
    (512 * 512 / 1e6, 12.0),
    (1024 * 1024 / 1e6, 20.0),
    (1536 * 1536 / 1e6, 30.0),
)
_REFERENCE_PIXELS: Final = 1024 * 1024
_BUCKET_MEGAPIXELS: Final = 0.25
_MIN_SECONDS: Final = 1.0

# Prior of the log-linear generation model (log seconds). Real Qwen-Image durations on Novita are
# not published, so the level is held loosely (sd 0.8: one sd is 0.45×–2.2× the prior) while the
# size slope, which is physics rather than load, is held firmer.
_PRIOR_INTERCEPT: Final = math.log(20.0)
_PRIOR_INTERCEPT_SD: Final = 0.8
_PRIOR_SLOPE: Final = math.log(30.0 / 12.0) / math.log(9.0)  # through the 512² and 1536² anchors
_PRIOR_SLOPE_SD: Final = 0.25
_BUCKET_OFFSET_SD: Final = 0.15     # how far one size may sit off the shared line
_PRIOR_LOG_SPREAD: Final = 0.2      # ≈ 20 % relative spread
_PRIOR_SPREAD_WEIGHT: Final = 2.0   # pseudo-jobs behind that spread
_MIN_LOG_SPREAD: Final = 0.03       # never certain to the tenth of a second
_MAX_LOG_SPREAD: Final = 1.5        # ×/÷ 4.5 at one spread: broader says nothing to a planner
_MAX_PREDICTIVE_SPREAD: Final = 2.5
_RECENTRE_SPREADS: Final = 2.0      # warm start this far off the data → start from the data

# Queue time given that a job queued, and how often that happens.
_PRIOR_QUEUE_LOG_MEDIAN: Final = math.log(3.0)
_PRIOR_QUEUE_LOG_MEDIAN_SD: Final = 1.0
_PRIOR_QUEUE_LOG_SPREAD: Final = 0.8
_PRIOR_QUEUE_SHARE: Final = 0.1
_PRIOR_QUEUE_SHARE_WEIGHT: Final = 3.0

_HALF_LIFE_JOBS: Final = 12.0       # a finish 12 jobs ago counts half
_MAX_BRACKETS: Final = 64           # beyond this the weight is < 3 %: not worth the fit time
_HUBER_SPREADS: Final = 2.5         # residuals beyond this many predictive spreads are clipped
_SURPRISE_Z: Final = 2.33           # outside the central 98 % band of the forecast
_REGIME_DISCOUNT: Final = 0.05      # weight left to brackets from before a regime change
_PRIOR_OUTLIER_SHARE: Final = 0.05
_OUTLIER_SHARE_WEIGHT: Final = 4.0
_EM_MAX_ITERATIONS: Final = 60
_EM_TOLERANCE: Final = 1e-5
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


@dataclass(frozen=True)
class Bracket:
    """One finished job: its duration lies in (lower, upper] seconds; `lower` 0 means unknown."""

    bucket: str
    log_pixels: float
    lower: float
    upper: float
    seq: int            # order of recording, for recency weights
    surprise: int = 0   # -1/+1: fell below/above the band predicted when it was recorded


@dataclass(frozen=True)
class _Fit:
    """Fitted log-linear model: log-median = intercept + slope·x + offset[bucket]."""

    intercept: float
    slope: float
    offsets: Mapping[str, float]
    log_spread: float
    # Posterior covariance over (intercept, slope, *offsets in `buckets` order).
    covariance: tuple[tuple[float, ...], ...]
    buckets: tuple[str, ...] = ()

    def log_median(self, bucket: str | None, x: float) -> float:
        return self.intercept + self.slope * x + (self.offsets.get(bucket, 0.0) if bucket else 0.0)

    def median_variance(self, bucket: str | None, x: float) -> float:
        """Posterior variance of the log-median for a size (a new bucket adds its offset sd)."""
        vector = [1.0, x] + [1.0 if b == bucket else 0.0 for b in self.buckets]
        variance = sum(
            vector[i] * vector[j] * self.covariance[i][j]
            for i in range(len(vector)) if vector[i]
            for j in range(len(vector)) if vector[j]
        )
        if bucket not in self.offsets:
            variance += _BUCKET_OFFSET_SD**2
        return max(variance, 0.0)


_PRIOR_FIT: Final = _Fit(
    intercept=_PRIOR_INTERCEPT,
    slope=_PRIOR_SLOPE,
    offsets={},
    log_spread=_PRIOR_LOG_SPREAD,
    covariance=((_PRIOR_INTERCEPT_SD**2, 0.0), (0.0, _PRIOR_SLOPE_SD**2)),
)
_PRIOR_QUEUE_FIT: Final = _Fit(
    intercept=_PRIOR_QUEUE_LOG_MEDIAN,
    slope=0.0,
    offsets={},
    log_spread=_PRIOR_QUEUE_LOG_SPREAD,
    covariance=((_PRIOR_QUEUE_LOG_MEDIAN_SD**2, 0.0), (0.0, 0.0)),
)


@dataclass
class DurationModel:
    """Learns generation time (per size, pooled by pixel count) and queue time from brackets."""

    brackets: list[Bracket] = field(default_factory=list)
    queue_brackets: list[Bracket] = field(default_factory=list)
    queued_flags: list[tuple[int, bool]] = field(default_factory=list)  # (seq, seen queued)
    seq: int = 0
    regime_start: int = 0   # brackets recorded before this seq are discounted
    fit: _Fit = _PRIOR_FIT
    queue_fit: _Fit = _PRIOR_QUEUE_FIT

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
        self.queued_flags = [*self.queued_flags[-(_MAX_BRACKETS - 1):], (self.seq, queued)]
        if queued and started_by > 0:
            queue = Bracket("queue", 0.0, started_after, started_by, self.seq)
            self.queue_brackets = [*self.queue_brackets[-(_MAX_BRACKETS - 1):], queue]
            self.queue_fit = _fit(self.queue_brackets, self.queue_fit, self._weights(
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
        self.brackets = [*self.brackets[-(_MAX_BRACKETS - 1):], bracket]
        if surprise and previous is not None and previous.surprise == surprise:
            # Two finishes in a row beyond the band on the same side: the upstream changed.
            self.regime_start = previous.seq
        self.fit = _fit(self.brackets, self.fit, self._weights(self.brackets), pooled=True)

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
            "fit": _dump_fit(self.fit),
            "queue_fit": _dump_fit(self.queue_fit),
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
                brackets=_load_brackets(data.get("brackets")),
                queue_brackets=_load_brackets(data.get("queue_brackets")),
                queued_flags=[(int(seq), bool(seen)) for seq, seen in
                              data.get("queued_flags", [])][-_MAX_BRACKETS:],
                seq=int(data.get("seq", 0)),
                regime_start=int(data.get("regime_start", 0)),
            )
            fit, queue_fit = _load_fit(data.get("fit")), _load_fit(data.get("queue_fit"))
        except (TypeError, ValueError, KeyError, IndexError):
            return cls()
        # A stored fit is restored as it was (the live model's exact state); a missing or damaged
        # one is refitted from the brackets.
        model.fit = fit or _fit(model.brackets, _PRIOR_FIT, model._weights(model.brackets),
                                pooled=True)
        model.queue_fit = queue_fit or _fit(model.queue_brackets, _PRIOR_QUEUE_FIT,
                                            model._weights(model.queue_brackets), pooled=False)
        return model


# --- the fit ------------------------------------------------------------------------------------


def _fit(brackets: Sequence[Bracket], start: _Fit, weights: Sequence[float], *,
         pooled: bool) -> _Fit:
    """MAP fit of the censored log-normal model, warm-started from `start`.

    `pooled=True`: log-median = intercept + slope·x + offset[bucket], priors as above.
    `pooled=False` (queue time): a single log-median, no size terms.
    EM: the E-step replaces each bracket by the mean and variance of the current normal truncated
    to it; the M-step is a ridge regression on those means (Huber-weighted) and a spread update.
    """
    if not brackets:
        return _PRIOR_FIT if pooled else _PRIOR_QUEUE_FIT
    buckets = tuple(sorted({b.bucket for b in brackets})) if pooled else ()
    index = {key: 2 + i for i, key in enumerate(buckets)}
    size = 2 + len(buckets)
    if pooled:
        prior_mean = [_PRIOR_INTERCEPT, _PRIOR_SLOPE] + [0.0] * len(buckets)
        prior_precision = [1 / _PRIOR_INTERCEPT_SD**2, 1 / _PRIOR_SLOPE_SD**2] + (
            [1 / _BUCKET_OFFSET_SD**2] * len(buckets))
        spread_prior, spread_weight = _PRIOR_LOG_SPREAD, _PRIOR_SPREAD_WEIGHT
    else:
        prior_mean = [_PRIOR_QUEUE_LOG_MEDIAN, 0.0]
        prior_precision = [1 / _PRIOR_QUEUE_LOG_MEDIAN_SD**2, 1e12]  # slope pinned at 0
        spread_prior, spread_weight = _PRIOR_QUEUE_LOG_SPREAD, _PRIOR_SPREAD_WEIGHT
    rows = [
        ((0, 1.0), (1, b.log_pixels), (index[b.bucket], 1.0)) if pooled else ((0, 1.0),)
        for b in brackets
    ]
    logs = [(math.log(b.lower) if b.lower > 0 else -math.inf, math.log(b.upper))
            for b in brackets]
    theta = [start.intercept, start.slope] + [start.offsets.get(k, 0.0) for k in buckets]
    sigma = min(max(start.log_spread, _MIN_LOG_SPREAD), _MAX_LOG_SPREAD)
    theta[0] += _recentring_shift(rows, logs, weights, theta, sigma, spread_prior)
    # Huber scale per bracket: its predictive spread under the starting fit, so a fresh model
    # (wide uncertainty) learns from anything while an established one shrugs off one odd job.
    scales = [
        math.sqrt(sigma**2 + (start.median_variance(b.bucket, b.log_pixels) if pooled
                              else start.covariance[0][0]))
        for b in brackets
    ]
    info = [1.0] * len(brackets)
    used_weights = list(weights)
    for _ in range(_EM_MAX_ITERATIONS):
        means: list[float] = []
        variances: list[float] = []
        for n, (row, (low, high)) in enumerate(zip(rows, logs, strict=True)):
            mu = sum(theta[i] * v for i, v in row)
            mean, variance = _truncated_normal_moments(mu, sigma, low, high)
            means.append(mean)
            variances.append(variance)
            info[n] = max(0.05, 1 - variance / sigma**2)
            limit = _HUBER_SPREADS * scales[n]
            residual = abs(mean - mu)
            used_weights[n] = weights[n] * (1.0 if residual <= limit else limit / residual)
        new_theta = _ridge(rows, means, used_weights, sigma, prior_mean, prior_precision, size)
        # Spread on the residuals around the new location (EM with a scaled-χ² prior).
        residual_squares = sum(
            w * ((mean - sum(new_theta[i] * v for i, v in row)) ** 2 + variance)
            for row, mean, variance, w in zip(rows, means, variances, used_weights, strict=True)
        )
        new_sigma = math.sqrt((residual_squares + spread_weight * spread_prior**2)
                              / (sum(used_weights) + spread_weight))
        new_sigma = min(max(new_sigma, _MIN_LOG_SPREAD), _MAX_LOG_SPREAD)
        change = max(abs(new_sigma - sigma),
                     *(abs(a - b) for a, b in zip(theta, new_theta, strict=True)))
        theta, sigma = new_theta, new_sigma
        if change < _EM_TOLERANCE:
            break
    # Posterior covariance, counting a wide bracket as less than one exact observation.
    info_weights = [w * c for w, c in zip(used_weights, info, strict=True)]
    covariance = _inverse(_normal_matrix(rows, info_weights, sigma, prior_precision, size))
    return _Fit(
        intercept=theta[0],
        slope=theta[1],
        offsets={key: theta[index[key]] for key in buckets},
        log_spread=sigma,
        covariance=tuple(tuple(row) for row in covariance),
        buckets=buckets,
    )


def _recentring_shift(rows: Sequence[tuple[tuple[int, float], ...]],
                      logs: Sequence[tuple[float, float]], weights: Sequence[float],
                      theta: Sequence[float], sigma: float, spread_prior: float) -> float:
    """How far to move the intercept before EM when the warm start is far from the brackets.

    EM from a start far off censored data can stall: far-tail brackets inflate the spread, which
    drowns the data in the prior, which keeps the location far off (e.g. every job done before
    the first poll). A weighted median of each bracket's representative point (its log-midpoint,
    or a little inside a one-sided bound) puts the start among the data instead.
    """
    residuals = []
    for row, (low, high), weight in zip(rows, logs, weights, strict=True):
        point = (low + high) / 2 if math.isfinite(low) else high - spread_prior
        residuals.append((point - sum(theta[i] * v for i, v in row), weight))
    residuals.sort()
    half, running = sum(w for _, w in residuals) / 2, 0.0
    for residual, weight in residuals:
        running += weight
        if running >= half:
            return residual if abs(residual) > _RECENTRE_SPREADS * max(sigma, spread_prior) else 0.0
    return 0.0


def _normal_matrix(rows: Sequence[tuple[tuple[int, float], ...]], weights: Sequence[float],
                   sigma: float, prior_precision: Sequence[float], size: int) -> list[list[float]]:
    matrix = [[0.0] * size for _ in range(size)]
    for i in range(size):
        matrix[i][i] = prior_precision[i]
    scale = 1 / sigma**2
    for row, weight in zip(rows, weights, strict=True):
        w = weight * scale
        for i, vi in row:
            for j, vj in row:
                matrix[i][j] += w * vi * vj
    return matrix


def _ridge(rows: Sequence[tuple[tuple[int, float], ...]], targets: Sequence[float],
           weights: Sequence[float], sigma: float, prior_mean: Sequence[float],
           prior_precision: Sequence[float], size: int) -> list[float]:
    matrix = _normal_matrix(rows, weights, sigma, prior_precision, size)
    rhs = [p * m for p, m in zip(prior_precision, prior_mean, strict=True)]
    scale = 1 / sigma**2
    for row, target, weight in zip(rows, targets, weights, strict=True):
        for i, vi in row:
            rhs[i] += weight * scale * vi * target
    return _solve(matrix, rhs)


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Gaussian elimination; the matrix is symmetric positive definite (priors on every term)."""
    n = len(rhs)
    a = [[*row, value] for row, value in zip(matrix, rhs, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor:
                for c in range(col, n + 1):
                    a[r][c] -= factor * a[col][c]
    solution = [0.0] * n
    for r in range(n - 1, -1, -1):
        solution[r] = (a[r][n] - sum(a[r][c] * solution[c] for c in range(r + 1, n))) / a[r][r]
    return solution


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    n = len(matrix)
    columns = [_solve(matrix, [1.0 if i == j else 0.0 for i in range(n)]) for j in range(n)]
    return [[columns[j][i] for j in range(n)] for i in range(n)]


def _truncated_normal_moments(mu: float, sigma: float, low: float, high: float
                              ) -> tuple[float, float]:
    """Mean and variance of N(mu, sigma²) restricted to (low, high]."""
    if high - low < 1e-9 * max(1.0, abs(high)):
        return (low + high) / 2, 0.0
    a = (low - mu) / sigma
    b = (high - mu) / sigma
    pdf_a = _normal_pdf(a) if math.isfinite(a) else 0.0
    pdf_b = _normal_pdf(b)
    mass = _normal_cdf(b) - (_normal_cdf(a) if math.isfinite(a) else 0.0)
    if mass < 1e-12:
        # The bracket sits far in one tail: its mass hugs the end nearer the mean.
        if b < 0:
            return high - sigma / max(-b, 1.0), 0.0
        return low + sigma / max(a, 1.0), 0.0
    shift = (pdf_a - pdf_b) / mass
    term_a = a * pdf_a if math.isfinite(a) else 0.0
    variance_factor = 1 + (term_a - b * pdf_b) / mass - shift**2
    mean = min(max(mu + sigma * shift, low), high)
    return mean, sigma**2 * max(variance_factor, 0.0)


def _normal_pdf(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def normal_survival(z: float) -> float:
    """P(Z > z) for a standard normal, accurate far into the upper tail."""
    return 0.5 * math.erfc(z / math.sqrt(2))


# --- persistence helpers ------------------------------------------------------------------------


def _dump_fit(fit: _Fit) -> dict[str, Any]:
    return {
        "intercept": fit.intercept,
        "slope": fit.slope,
        "offsets": dict(fit.offsets),
        "log_spread": fit.log_spread,
        "covariance": [list(row) for row in fit.covariance],
        "buckets": list(fit.buckets),
    }


def _load_fit(raw: object) -> _Fit | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        buckets = tuple(str(b) for b in raw["buckets"])
        offsets = {str(k): float(v) for k, v in raw["offsets"].items()}
        covariance = tuple(tuple(float(v) for v in row) for row in raw["covariance"])
        fit = _Fit(float(raw["intercept"]), float(raw["slope"]), offsets,
                   float(raw["log_spread"]), covariance, buckets)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    numbers = [fit.intercept, fit.slope, fit.log_spread, *offsets.values(),
               *(v for row in covariance for v in row)]
    square = len(covariance) == 2 + len(buckets) and all(len(r) == len(covariance)
                                                          for r in covariance)
    if not square or set(buckets) != set(offsets) or fit.log_spread <= 0 or not all(
            math.isfinite(v) for v in numbers):
        return None
    return fit


def _load_brackets(raw: object) -> list[Bracket]:
    if not isinstance(raw, list):
        return []
    brackets: list[Bracket] = []
    for item in raw[-_MAX_BRACKETS:]:
        bucket, x, lower, upper, seq, surprise = item
        bracket = Bracket(str(bucket), float(x), float(lower), float(upper), int(seq),
                          max(-1, min(1, int(surprise))))
        values = (bracket.log_pixels, bracket.lower, bracket.upper)
        if all(math.isfinite(v) for v in values) and 0 <= bracket.lower <= bracket.upper > 0:
            brackets.append(bracket)
    return brackets


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
    model.brackets = brackets[-_MAX_BRACKETS:]
    model.fit = _fit(model.brackets, _PRIOR_FIT, model._weights(model.brackets), pooled=True)
    return model
