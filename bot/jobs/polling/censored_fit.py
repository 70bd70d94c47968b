"""Fitting a log-normal to interval-censored durations: the statistics behind `durations.py`.

Each observation is a bracket (lower, upper] on a duration; the model is a log-linear median in
log-pixels plus shrunk per-bucket offsets and one log-spread, fitted as a maximum a posteriori
estimate by EM over truncated normals (Huber-weighted, recency-weighted by the caller). Pure
numerics, no I/O; the priors that regularise the fit live here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

# Prior of the log-linear generation model (log seconds). Real Qwen-Image durations on Novita are
# not published, so the level is held loosely (sd 0.8: one sd is 0.45×–2.2× the prior) while the
# size slope, which is physics rather than load, is held firmer.
_PRIOR_INTERCEPT: Final = math.log(20.0)
_PRIOR_INTERCEPT_SD: Final = 0.8
PRIOR_SLOPE: Final = math.log(30.0 / 12.0) / math.log(9.0)  # through the 512² and 1536² anchors
_PRIOR_SLOPE_SD: Final = 0.25
_BUCKET_OFFSET_SD: Final = 0.15     # how far one size may sit off the shared line
_PRIOR_LOG_SPREAD: Final = 0.2      # ≈ 20 % relative spread
_PRIOR_SPREAD_WEIGHT: Final = 2.0   # pseudo-jobs behind that spread
_MIN_LOG_SPREAD: Final = 0.03       # never certain to the tenth of a second
MAX_LOG_SPREAD: Final = 1.5        # ×/÷ 4.5 at one spread: broader says nothing to a planner
_RECENTRE_SPREADS: Final = 2.0      # warm start this far off the data → start from the data
PRIOR_QUEUE_LOG_MEDIAN: Final = math.log(3.0)
PRIOR_QUEUE_LOG_MEDIAN_SD: Final = 1.0
_PRIOR_QUEUE_LOG_SPREAD: Final = 0.8
MAX_BRACKETS: Final = 64           # beyond this the weight is < 3 %: not worth the fit time
_HUBER_SPREADS: Final = 2.5         # residuals beyond this many predictive spreads are clipped
_EM_MAX_ITERATIONS: Final = 60
EM_TOLERANCE: Final = 1e-5


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
class LogLinearFit:
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


PRIOR_FIT: Final = LogLinearFit(
    intercept=_PRIOR_INTERCEPT,
    slope=PRIOR_SLOPE,
    offsets={},
    log_spread=_PRIOR_LOG_SPREAD,
    covariance=((_PRIOR_INTERCEPT_SD**2, 0.0), (0.0, _PRIOR_SLOPE_SD**2)),
)


PRIOR_QUEUE_FIT: Final = LogLinearFit(
    intercept=PRIOR_QUEUE_LOG_MEDIAN,
    slope=0.0,
    offsets={},
    log_spread=_PRIOR_QUEUE_LOG_SPREAD,
    covariance=((PRIOR_QUEUE_LOG_MEDIAN_SD**2, 0.0), (0.0, 0.0)),
)


def fit_brackets(brackets: Sequence[Bracket], start: LogLinearFit, weights: Sequence[float], *,
         pooled: bool) -> LogLinearFit:
    """MAP fit of the censored log-normal model, warm-started from `start`.

    `pooled=True`: log-median = intercept + slope·x + offset[bucket], priors as above.
    `pooled=False` (queue time): a single log-median, no size terms.
    EM: the E-step replaces each bracket by the mean and variance of the current normal truncated
    to it; the M-step is a ridge regression on those means (Huber-weighted) and a spread update.
    """
    if not brackets:
        return PRIOR_FIT if pooled else PRIOR_QUEUE_FIT
    buckets = tuple(sorted({b.bucket for b in brackets})) if pooled else ()
    index = {key: 2 + i for i, key in enumerate(buckets)}
    size = 2 + len(buckets)
    if pooled:
        prior_mean = [_PRIOR_INTERCEPT, PRIOR_SLOPE] + [0.0] * len(buckets)
        prior_precision = [1 / _PRIOR_INTERCEPT_SD**2, 1 / _PRIOR_SLOPE_SD**2] + (
            [1 / _BUCKET_OFFSET_SD**2] * len(buckets))
        spread_prior, spread_weight = _PRIOR_LOG_SPREAD, _PRIOR_SPREAD_WEIGHT
    else:
        prior_mean = [PRIOR_QUEUE_LOG_MEDIAN, 0.0]
        prior_precision = [1 / PRIOR_QUEUE_LOG_MEDIAN_SD**2, 1e12]  # slope pinned at 0
        spread_prior, spread_weight = _PRIOR_QUEUE_LOG_SPREAD, _PRIOR_SPREAD_WEIGHT
    rows = [
        ((0, 1.0), (1, b.log_pixels), (index[b.bucket], 1.0)) if pooled else ((0, 1.0),)
        for b in brackets
    ]
    logs = [(math.log(b.lower) if b.lower > 0 else -math.inf, math.log(b.upper))
            for b in brackets]
    theta = [start.intercept, start.slope] + [start.offsets.get(k, 0.0) for k in buckets]
    sigma = min(max(start.log_spread, _MIN_LOG_SPREAD), MAX_LOG_SPREAD)
    theta[0] += recentring_shift(rows, logs, weights, theta, sigma, spread_prior)
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
            mean, variance = truncated_normal_moments(mu, sigma, low, high)
            means.append(mean)
            variances.append(variance)
            info[n] = max(0.05, 1 - variance / sigma**2)
            limit = _HUBER_SPREADS * scales[n]
            residual = abs(mean - mu)
            used_weights[n] = weights[n] * (1.0 if residual <= limit else limit / residual)
        new_theta = ridge(rows, means, used_weights, sigma, prior_mean, prior_precision, size)
        # Spread on the residuals around the new location (EM with a scaled-χ² prior).
        residual_squares = sum(
            w * ((mean - sum(new_theta[i] * v for i, v in row)) ** 2 + variance)
            for row, mean, variance, w in zip(rows, means, variances, used_weights, strict=True)
        )
        new_sigma = math.sqrt((residual_squares + spread_weight * spread_prior**2)
                              / (sum(used_weights) + spread_weight))
        new_sigma = min(max(new_sigma, _MIN_LOG_SPREAD), MAX_LOG_SPREAD)
        change = max(abs(new_sigma - sigma),
                     *(abs(a - b) for a, b in zip(theta, new_theta, strict=True)))
        theta, sigma = new_theta, new_sigma
        if change < EM_TOLERANCE:
            break
    # Posterior covariance, counting a wide bracket as less than one exact observation.
    info_weights = [w * c for w, c in zip(used_weights, info, strict=True)]
    covariance = inverse(normal_matrix(rows, info_weights, sigma, prior_precision, size))
    return LogLinearFit(
        intercept=theta[0],
        slope=theta[1],
        offsets={key: theta[index[key]] for key in buckets},
        log_spread=sigma,
        covariance=tuple(tuple(row) for row in covariance),
        buckets=buckets,
    )


def recentring_shift(rows: Sequence[tuple[tuple[int, float], ...]],
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


def normal_matrix(rows: Sequence[tuple[tuple[int, float], ...]], weights: Sequence[float],
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


def ridge(rows: Sequence[tuple[tuple[int, float], ...]], targets: Sequence[float],
           weights: Sequence[float], sigma: float, prior_mean: Sequence[float],
           prior_precision: Sequence[float], size: int) -> list[float]:
    matrix = normal_matrix(rows, weights, sigma, prior_precision, size)
    rhs = [p * m for p, m in zip(prior_precision, prior_mean, strict=True)]
    scale = 1 / sigma**2
    for row, target, weight in zip(rows, targets, weights, strict=True):
        for i, vi in row:
            rhs[i] += weight * scale * vi * target
    return solve(matrix, rhs)


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
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


def inverse(matrix: list[list[float]]) -> list[list[float]]:
    n = len(matrix)
    columns = [solve(matrix, [1.0 if i == j else 0.0 for i in range(n)]) for j in range(n)]
    return [[columns[j][i] for j in range(n)] for i in range(n)]


def truncated_normal_moments(mu: float, sigma: float, low: float, high: float
                              ) -> tuple[float, float]:
    """Mean and variance of N(mu, sigma²) restricted to (low, high]."""
    if high - low < 1e-9 * max(1.0, abs(high)):
        return (low + high) / 2, 0.0
    a = (low - mu) / sigma
    b = (high - mu) / sigma
    pdf_a = normal_pdf(a) if math.isfinite(a) else 0.0
    pdf_b = normal_pdf(b)
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


def normal_pdf(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def normal_survival(z: float) -> float:
    """P(Z > z) for a standard normal, accurate far into the upper tail."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def dump_fit(fit: LogLinearFit) -> dict[str, Any]:
    return {
        "intercept": fit.intercept,
        "slope": fit.slope,
        "offsets": dict(fit.offsets),
        "log_spread": fit.log_spread,
        "covariance": [list(row) for row in fit.covariance],
        "buckets": list(fit.buckets),
    }


def load_fit(raw: object) -> LogLinearFit | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        buckets = tuple(str(b) for b in raw["buckets"])
        offsets = {str(k): float(v) for k, v in raw["offsets"].items()}
        covariance = tuple(tuple(float(v) for v in row) for row in raw["covariance"])
        fit = LogLinearFit(float(raw["intercept"]), float(raw["slope"]), offsets,
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


def load_brackets(raw: object) -> list[Bracket]:
    if not isinstance(raw, list):
        return []
    brackets: list[Bracket] = []
    for item in raw[-MAX_BRACKETS:]:
        bucket, x, lower, upper, seq, surprise = item
        bracket = Bracket(str(bucket), float(x), float(lower), float(upper), int(seq),
                          max(-1, min(1, int(surprise))))
        values = (bracket.log_pixels, bracket.lower, bracket.upper)
        if all(math.isfinite(v) for v in values) and 0 <= bracket.lower <= bracket.upper > 0:
            brackets.append(bracket)
    return brackets
