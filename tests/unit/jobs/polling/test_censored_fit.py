"""DurationModel learns from interval-censored finishes: (last poll pending, first poll done]."""

from __future__ import annotations

import json
import math
import random

import pytest

from bot.imaging import ImageSize
from bot.jobs.polling.censored_fit import MAX_BRACKETS, PRIOR_FIT, Bracket, fit_brackets
from bot.jobs.polling.durations import DurationModel, bucket_key

SMALL, SQUARE, LARGE = ImageSize(512, 512), ImageSize(1024, 1024), ImageSize(1536, 1536)


def poll_bracket(duration: float, gap: float, rng: random.Random) -> tuple[float, float]:
    """What a poller with a fixed `gap` (random phase) sees of a job taking `duration`."""
    first = rng.uniform(0, gap)
    polls_before = max(0, math.ceil((duration - first) / gap))
    upper = first + polls_before * gap
    return max(0.0, upper - gap), upper


def median(model: DurationModel, size: ImageSize) -> float:
    return math.exp(model.generation_log_normal(size)[0])


def bracketed_jobs(
    rng: random.Random, jobs: int, *, median: float, sigma: float, width: float, x: float
) -> list[Bracket]:
    """`jobs` square jobs from LogNormal(`median`, `sigma`), each seen only through the bracket
    of polls `width` seconds apart."""
    brackets = []
    for seq in range(jobs):
        lower, upper = poll_bracket(median * math.exp(rng.gauss(0, sigma)), width, rng)
        brackets.append(Bracket(bucket_key(SQUARE), x, lower, upper, seq))
    return brackets


def test_censored_fit_recovers_a_known_log_normal() -> None:
    # 400 jobs from LogNormal(median 12 s, sigma 0.25), each seen only through 3 s-wide brackets.
    rng = random.Random(11)
    x = math.log(SQUARE.pixels / (1024 * 1024))
    brackets = bracketed_jobs(rng, 400, median=12.0, sigma=0.25, width=3.0, x=x)
    fit = fit_brackets(brackets, PRIOR_FIT, [1.0] * len(brackets), pooled=True)
    assert math.exp(fit.log_median(bucket_key(SQUARE), x)) == pytest.approx(12.0, rel=0.03)
    assert fit.log_spread == pytest.approx(0.25, abs=0.03)


def test_midpoint_imputation_would_be_biased_the_bracket_fit_is_not() -> None:
    # Polls 8 s apart: the bracket is wider than the whole spread. Midpoints overstate the spread
    # and shift the centre; the joint censored fit gets both right.
    rng = random.Random(5)
    x = 0.0
    brackets = bracketed_jobs(rng, 300, median=10.0, sigma=0.1, width=8.0, x=x)
    fit = fit_brackets(brackets, PRIOR_FIT, [1.0] * len(brackets), pooled=True)
    assert math.exp(fit.log_median(bucket_key(SQUARE), x)) == pytest.approx(10.0, rel=0.05)
    assert fit.log_spread < 0.2
    midpoints = [math.log((b.lower + b.upper) / 2) for b in brackets if b.lower > 0]
    mean = sum(midpoints) / len(midpoints)
    midpoint_spread = math.sqrt(sum((m - mean) ** 2 for m in midpoints) / len(midpoints))
    assert midpoint_spread > 2 * fit.log_spread


def test_a_single_bracket_pins_the_estimate_inside_it() -> None:
    model = DurationModel()
    model.record(SQUARE, 30.0, 32.0)
    assert 30.0 < median(model, SQUARE) <= 32.0
    # A bracket far below the prior (the fresh install): believed at once, not averaged.
    fast = DurationModel()
    fast.record(SQUARE, 6.0, 7.0)
    assert 6.0 < median(fast, SQUARE) <= 7.0


def test_a_wide_bracket_moves_the_estimate_less_than_a_narrow_one() -> None:
    narrow, wide = DurationModel(), DurationModel()
    narrow.record(SQUARE, 7.5, 8.0)
    wide.record(SQUARE, 2.0, 14.0)
    _, narrow_spread = narrow.generation_log_normal(SQUARE)
    _, wide_spread = wide.generation_log_normal(SQUARE)
    assert wide_spread > narrow_spread  # the model knows it learned less


def test_the_fit_converges_to_the_truth_from_a_wrong_prior_without_feedback() -> None:
    # The trap: jobs of 8 s first seen at a second poll. Brackets, not imputed points,
    # so the model lands on the real duration rather than the late edge of the bracket.
    model = DurationModel()
    rng = random.Random(2)
    for _ in range(20):
        model.record(SQUARE, *poll_bracket(8.0 * math.exp(rng.gauss(0, 0.15)), 1.5, rng))
    assert median(model, SQUARE) == pytest.approx(8.0, rel=0.08)


def test_a_size_never_seen_borrows_from_the_others_by_pixel_count() -> None:
    model = DurationModel()
    for _ in range(10):
        model.record(SMALL, 23.5, 24.5)   # 2× the prior at 512²
        model.record(LARGE, 59.5, 60.5)   # 2× the prior at 1536²
    assert model.expected(SQUARE).observations == 0
    assert median(model, SQUARE) == pytest.approx(40.0, rel=0.15)


def test_recent_jobs_outweigh_old_ones_so_drift_is_followed() -> None:
    model = DurationModel()
    for k in range(40):
        seconds = 20.0 * (1 + 0.5 * k / 40)  # +50 % over 40 jobs
        model.record(SQUARE, seconds - 0.25, seconds + 0.25)
    # Recency weights (half-life 12 jobs) lag a steady ramp by about 12/ln 2 ≈ 17 jobs, i.e.
    # ~4 s here; without them the estimate would sit near the 40-job average of ~25 s.
    assert 25.5 < median(model, SQUARE) < 29.75


def test_two_finishes_beyond_the_band_are_a_regime_change() -> None:
    model = DurationModel()
    for _ in range(30):
        model.record(SQUARE, 19.75, 20.25)
    model.record(SQUARE, 39.75, 40.25)
    after_one = median(model, SQUARE)
    assert after_one < 24.0  # one odd job does not swing an established model
    assert model.outlier_share() > 0.05  # … but makes the planner keep a wider tail
    model.record(SQUARE, 39.5, 40.5)
    assert median(model, SQUARE) > 34.0  # a second one in a row: the upstream changed


def test_queue_time_is_learned_apart_from_generation() -> None:
    model = DurationModel()
    for _ in range(10):
        # Seen QUEUED at 8 s, PROCESSING at 10 s, done between 29.5 and 30 s.
        model.record(SQUARE, 29.5, 30.0, started_after=8.0, started_by=10.0, queued=True)
    estimate = model.expected(SQUARE)
    assert 5.0 < estimate.queue_mean < 10.0
    assert 18.0 < median(model, SQUARE) < 22.5
    assert model.queue_share() > 0.5


def test_nonsense_brackets_are_ignored() -> None:
    model = DurationModel()
    model.record(SQUARE, float("nan"), 10.0)
    model.record(SQUARE, 5.0, -1.0)
    model.record(SQUARE, 5.0, float("inf"))
    assert model.brackets == []


def test_history_is_bounded() -> None:
    model = DurationModel()
    for k in range(3 * MAX_BRACKETS):
        model.record(SQUARE, 10.0 + k % 3, 11.0 + k % 3)
    assert len(model.brackets) == MAX_BRACKETS
    assert len(model.queued_flags) == MAX_BRACKETS


def test_round_trip_restores_the_exact_model() -> None:
    model = DurationModel()
    rng = random.Random(4)
    for _ in range(12):
        model.record(SQUARE, *poll_bracket(rng.uniform(15, 25), 1.0, rng))
    model.record(LARGE, 20.0, 31.0, started_after=1.0, started_by=4.0, queued=True)
    restored = DurationModel.from_dict(json.loads(json.dumps(model.to_dict())))
    for size in (SQUARE, SMALL, LARGE, ImageSize(1280, 1280)):
        assert restored.expected(size) == model.expected(size)
    restored.record(SQUARE, 19.0, 20.0)
    model.record(SQUARE, 19.0, 20.0)
    assert restored.expected(SQUARE) == model.expected(SQUARE)


def test_version_1_moving_averages_are_converted() -> None:
    old = {
        "version": 1,
        "buckets": {"1.00": {"mean": 12.0, "spread": 1.0, "count": 40},
                    "0.25": {"mean": 7.0, "spread": 1.0, "count": 2}},
        "queue": {"mean": 0.4, "spread": 0.5, "count": 40},
        "speed": {"mean": 0.6, "spread": 0.1, "count": 42},
    }
    model = DurationModel.from_dict(old)
    assert median(model, SQUARE) == pytest.approx(12.0, rel=0.1)
    assert median(model, SMALL) == pytest.approx(7.0, rel=0.15)
    assert len(model.brackets) == 3 + 2


@pytest.mark.parametrize("stored", [
    {"version": 1, "buckets": {"1.00": {"mean": "x"}}, "queue": None, "speed": []},
    {"version": 1, "buckets": ["not", "a", "mapping"]},
    {"version": 1, "buckets": {"abc": {"mean": 10.0, "spread": 1.0, "count": 3}}},
    {"version": 2, "brackets": [["1.00", 0.0, 1.0]]},
    {"version": 2, "brackets": "garbage", "fit": {"intercept": "nan"}},
    {"version": 99},
    {},
])
def test_unreadable_stored_models_fall_back_to_the_prior(stored: dict[str, object]) -> None:
    prior = DurationModel().expected(SQUARE)
    assert DurationModel.from_dict(stored).expected(SQUARE) == prior


def test_a_damaged_stored_fit_is_refitted_from_the_brackets() -> None:
    model = DurationModel()
    for _ in range(5):
        model.record(SQUARE, 9.5, 10.0)
    data = model.to_dict()
    data["fit"] = {"intercept": float("inf")}
    restored = DurationModel.from_dict(data)
    assert median(restored, SQUARE) == pytest.approx(median(model, SQUARE), rel=0.02)


def test_jobs_done_before_the_first_poll_pull_the_model_down_and_never_blow_it_up() -> None:
    # Only upper bounds, far below the prior (a fast upstream, or a sped-up test stack): the fit
    # must land among them, not stall at the prior with an ever-growing spread.
    model = DurationModel()
    rng = random.Random(8)
    for _ in range(40):
        model.record(SMALL, 0.0, rng.uniform(0.09, 0.24))
    estimate = model.expected(SMALL)
    assert median(model, SMALL) < 0.25
    assert math.isfinite(estimate.generation_spread)
    assert model.fit.log_spread < 1.0
