"""DurationModel: prior by size, learning from finished jobs, persistence.

Interval-censored (bracket) estimation: tests/unit/jobs/polling/test_censored_fit.py.
"""

from __future__ import annotations

import json
import math
import random

import pytest

from bot.imaging import ImageSize
from bot.jobs.polling.durations import (
    DurationModel,
    bucket_key,
    prior_generation_seconds,
)

SMALL, SQUARE, LARGE = ImageSize(512, 512), ImageSize(1024, 1024), ImageSize(1536, 1536)


def test_prior_matches_anchors_and_interpolates() -> None:
    assert prior_generation_seconds(SMALL) == pytest.approx(12.0)
    assert prior_generation_seconds(SQUARE) == pytest.approx(20.0)
    assert prior_generation_seconds(LARGE) == pytest.approx(30.0)
    portrait = prior_generation_seconds(ImageSize(1024, 1536))
    assert 20.0 < portrait < 30.0
    assert 1.0 <= prior_generation_seconds(ImageSize(256, 256)) < 12.0


def test_fresh_model_returns_the_prior() -> None:
    estimate = DurationModel().expected(SQUARE)
    assert estimate.observations == 0
    log_median, log_spread = estimate.generation_log_params
    assert math.exp(log_median) == pytest.approx(20.0)
    # Real durations are unknown until jobs finish: a fresh model is honestly unsure (×/÷ 2 at
    # one spread), which is what makes the planner explore on a fresh install.
    assert log_spread > 0.5
    assert estimate.total_mean == pytest.approx(estimate.queue_mean + estimate.generation_mean)


def test_learns_mean_and_spread_of_a_bucket() -> None:
    model = DurationModel()
    rng = random.Random(3)
    for _ in range(200):
        model.observe(SQUARE, rng.gauss(26.0, 2.0), 0.0)
    estimate = model.expected(SQUARE)
    assert estimate.generation_mean == pytest.approx(26.0, abs=1.0)
    assert estimate.generation_spread == pytest.approx(2.0, abs=0.8)
    assert estimate.queue_mean < 0.2


def test_unseen_buckets_follow_the_overall_speed() -> None:
    model = DurationModel()
    for _ in range(30):
        model.observe(SQUARE, 30.0)  # everything runs 1.5× the prior
    assert model.expected(LARGE).observations == 0
    assert model.expected(LARGE).generation_mean > 35.0


def test_one_outlier_does_not_swing_an_established_bucket() -> None:
    model = DurationModel()
    for _ in range(30):
        model.observe(SQUARE, 20.0)
    before = model.expected(SQUARE).generation_mean
    model.observe(SQUARE, 200.0)
    assert model.expected(SQUARE).generation_mean < before + 2.0


def test_nonsense_observations_are_ignored() -> None:
    model = DurationModel()
    model.observe(SQUARE, float("nan"))
    model.observe(SQUARE, -3.0)
    assert model.expected(SQUARE).observations == 0


def test_sizes_in_the_same_bucket_share_learning() -> None:
    assert bucket_key(ImageSize(1024, 1024)) == bucket_key(ImageSize(1000, 1040))
    assert bucket_key(SMALL) != bucket_key(SQUARE)


def test_round_trips_through_json() -> None:
    model = DurationModel()
    for seconds in (18.0, 22.0, 21.0):
        model.observe(SQUARE, seconds, 1.0)
    model.observe(SMALL, 9.0)
    restored = DurationModel.from_dict(json.loads(json.dumps(model.to_dict())))
    for size in (SQUARE, SMALL, LARGE):
        assert restored.expected(size) == model.expected(size)


def test_from_dict_falls_back_to_the_prior_on_garbage() -> None:
    prior = DurationModel().expected(SQUARE)
    assert DurationModel.from_dict({"version": 99}).expected(SQUARE) == prior
    broken = {"version": 1, "buckets": {"1.00": {"mean": "x"}}, "queue": None, "speed": []}
    assert DurationModel.from_dict(broken).expected(SQUARE) == prior
