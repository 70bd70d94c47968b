"""How long jobs take: a prior per image size, refined by what finished jobs actually took.

Generation time grows with the pixel count, so jobs are grouped into megapixel buckets. Each
bucket keeps an exponentially weighted mean and spread of generation time; queue time (waiting
for a Novita worker) does not depend on the size and is tracked once. Buckets with no data yet
use the prior, scaled by how fast jobs have been overall compared with the prior. Pure: no I/O,
no clock; `to_dict()`/`from_dict()` let storage persist it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.imaging import ImageSize

# (megapixels, seconds): about 12 s at 512², 20 s at 1024², 30 s at 1536² for Qwen-Image.
_PRIOR_POINTS: Final = (
    (512 * 512 / 1e6, 12.0),
    (1024 * 1024 / 1e6, 20.0),
    (1536 * 1536 / 1e6, 30.0),
)
_PRIOR_SPREAD_RATIO: Final = 0.2     # prior standard deviation as a share of the mean
_PRIOR_QUEUE_MEAN: Final = 0.5       # seconds; usually a worker is free at once
_PRIOR_QUEUE_SPREAD: Final = 1.5
_MIN_SPREAD_RATIO: Final = 0.04      # never become certain to the tenth of a second
_MIN_SECONDS: Final = 1.0
_MIN_ALPHA: Final = 0.1              # weight of a new observation once a bucket is established
_BUCKET_MEGAPIXELS: Final = 0.25
_CLIP_SPREADS: Final = 1.5
# E[min(|e|, k·sd)] / sd for a normal e: turns the clipped mean deviation back into an sd.
_CLIPPED_MAD_PER_SD: Final = (
    math.sqrt(2 / math.pi) * (1 - math.exp(-_CLIP_SPREADS**2 / 2))
    + 2 * _CLIP_SPREADS * (1 - 0.5 * (1 + math.erf(_CLIP_SPREADS / math.sqrt(2))))
)
_FORMAT_VERSION: Final = 1


def prior_generation_seconds(size: ImageSize) -> float:
    """Linear interpolation (and extrapolation) of the prior through megapixel anchor points."""
    megapixels = size.pixels / 1e6
    xs = [point[0] for point in _PRIOR_POINTS]
    index = min(max(bisect.bisect_left(xs, megapixels), 1), len(xs) - 1)
    (x0, y0), (x1, y1) = _PRIOR_POINTS[index - 1], _PRIOR_POINTS[index]
    return max(_MIN_SECONDS, y0 + (y1 - y0) * (megapixels - x0) / (x1 - x0))


def bucket_key(size: ImageSize) -> str:
    """Sizes within a quarter megapixel of each other share what was learned."""
    bucket = round(size.pixels / 1e6 / _BUCKET_MEGAPIXELS) * _BUCKET_MEGAPIXELS
    return f"{bucket:.2f}"


@dataclass(frozen=True)
class DurationEstimate:
    """Expected seconds from submit to image ready, split into queue and generation."""

    queue_mean: float
    queue_spread: float
    generation_mean: float
    generation_spread: float
    observations: int  # finished jobs behind the generation figures (0 = prior only)

    @property
    def total_mean(self) -> float:
        return self.queue_mean + self.generation_mean

    @property
    def total_spread(self) -> float:
        return math.hypot(self.queue_spread, self.generation_spread)


@dataclass
class _Ewma:
    mean: float
    spread: float  # standard deviation estimate
    count: int = 0

    def update(self, value: float, *, min_spread: float, learn_spread: bool = True) -> None:
        alpha = max(_MIN_ALPHA, 1.0 / (self.count + 2))  # the prior counts as one observation
        # Huber-style clipping: a job stuck behind a queue we never saw must not swing the
        # estimate, nor (repeatedly) widen the spread and with it the dense polling window.
        limit = _CLIP_SPREADS * self.spread
        error = min(max(value - self.mean, -limit), limit)
        deviation = abs(error) / _CLIPPED_MAD_PER_SD
        self.mean += alpha * error
        if learn_spread:
            self.spread = max(min_spread, self.spread + alpha * (deviation - self.spread))
        self.count += 1


class DurationModel:
    """Learns generation time per size bucket and queue time overall."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Ewma] = {}
        self._queue = _Ewma(_PRIOR_QUEUE_MEAN, _PRIOR_QUEUE_SPREAD)
        self._speed = _Ewma(1.0, _PRIOR_SPREAD_RATIO)  # observed / prior, over all sizes

    def expected(self, size: ImageSize) -> DurationEstimate:
        bucket = self._buckets.get(bucket_key(size))
        if bucket is None:
            mean = prior_generation_seconds(size) * self._speed.mean
            spread = mean * self._speed.spread
            count = 0
        else:
            mean, spread, count = bucket.mean, bucket.spread, bucket.count
        return DurationEstimate(
            queue_mean=self._queue.mean,
            queue_spread=self._queue.spread,
            generation_mean=mean,
            generation_spread=spread,
            observations=count,
        )

    def observe(
        self,
        size: ImageSize,
        generation_seconds: float,
        queue_seconds: float | None = None,
        *,
        precise: bool = True,
    ) -> None:
        """Record one finished job. `queue_seconds` is None when the queue wait was not seen.

        `precise=False` says the finish was only bracketed by two far-apart polls: the guess
        still informs the mean, but its error would only inflate the spread, so that is kept.
        """
        if not math.isfinite(generation_seconds) or generation_seconds <= 0:
            return
        prior = prior_generation_seconds(size)
        self._speed.update(generation_seconds / prior, min_spread=_MIN_SPREAD_RATIO,
                           learn_spread=precise)
        key = bucket_key(size)
        bucket = self._buckets.get(key)
        if bucket is None:
            start = prior * self._speed.mean
            bucket = self._buckets[key] = _Ewma(start, start * _PRIOR_SPREAD_RATIO)
        bucket.update(generation_seconds, min_spread=bucket.mean * _MIN_SPREAD_RATIO,
                      learn_spread=precise)
        if queue_seconds is not None and math.isfinite(queue_seconds) and queue_seconds >= 0:
            self._queue.update(queue_seconds, min_spread=0.1)

    def to_dict(self) -> dict[str, Any]:
        def dump(ewma: _Ewma) -> dict[str, float | int]:
            return {"mean": ewma.mean, "spread": ewma.spread, "count": ewma.count}

        return {
            "version": _FORMAT_VERSION,
            "buckets": {key: dump(value) for key, value in sorted(self._buckets.items())},
            "queue": dump(self._queue),
            "speed": dump(self._speed),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DurationModel:
        """Rebuild a saved model; anything unreadable falls back to the prior."""
        model = cls()
        if data.get("version") != _FORMAT_VERSION:
            return model

        def load(raw: object) -> _Ewma | None:
            if not isinstance(raw, Mapping):
                return None
            try:
                mean, spread, count = float(raw["mean"]), float(raw["spread"]), int(raw["count"])
            except (KeyError, TypeError, ValueError):
                return None
            if not (math.isfinite(mean) and math.isfinite(spread)) or mean < 0 or spread < 0:
                return None
            return _Ewma(mean, spread, max(0, count))

        buckets = data.get("buckets")
        if isinstance(buckets, Mapping):
            for key, raw in buckets.items():
                loaded = load(raw)
                if loaded is not None and loaded.mean > 0:
                    model._buckets[str(key)] = loaded
        model._queue = load(data.get("queue")) or model._queue
        speed = load(data.get("speed"))
        if speed is not None and speed.mean > 0:
            model._speed = speed
        return model


def censored_finish(lower: float, upper: float, mean: float, spread: float) -> float:
    """Best guess of when a job finished, knowing only it was between two polls.

    The finish lies in (lower, upper]; weighting that interval by the forecast N(mean, spread)
    (a truncated normal's mean) avoids the bias a plain midpoint has when polls are sparse.
    """
    if upper <= lower:
        return upper
    if spread <= 0:
        return min(max(mean, lower), upper)
    a, b = (lower - mean) / spread, (upper - mean) / spread
    mass = _normal_cdf(b) - _normal_cdf(a)
    if mass < 1e-9:  # the forecast was far off: nothing better than the midpoint
        return (lower + upper) / 2
    shift = (_normal_pdf(a) - _normal_pdf(b)) / mass
    return min(max(mean + spread * shift, lower), upper)


def _normal_pdf(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))
