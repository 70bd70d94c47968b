"""The cost-model planner through the real JobEngine on a fake clock: cold start, settling,
drift, queue, upstream hints. Behaviour only: no sockets, no sleeps, no wall-clock timing."""

from __future__ import annotations

import math
import random

import pytest

from bot.imaging import ImageSize
from bot.jobs.polling.durations import DurationEstimate, DurationModel
from bot.jobs.polling.planner import AdaptivePlanner, PollState, finish_distribution
from bot.novita.models import TaskStatus
from tests.unit.jobs.polling.upstream import run_sequentially

LATE_CAP = AdaptivePlanner().late_max_interval


@pytest.mark.parametrize("seconds", [3.0, 6.0, 20.0, 60.0])
async def test_a_fresh_model_explores_instead_of_betting_on_the_prior(seconds: float) -> None:
    # The failure: a prior of ~20 s made a fresh install wait ~5 s on 2-8 s jobs.
    # With no history the planner polls moderately everywhere, so the first job is seen soon
    # whatever its length, and the fixed 3 s poller's ~1.5 s typical delay is beaten.
    [(polls, delay)], _ = await run_sequentially([(0.0, seconds)])
    assert delay <= LATE_CAP
    assert polls <= seconds / 1.0 + 4  # far from 0.5 s polling: ~2 s gaps at cold start


async def test_the_real_duration_is_found_within_a_few_jobs_then_polls_settle() -> None:
    rng = random.Random(3)
    script = [(0.0, 8.0 * math.exp(rng.gauss(0, 0.1))) for _ in range(16)]
    outcomes, model = await run_sequentially(script)
    median = math.exp(model.generation_log_normal(model_size())[0])
    assert median == pytest.approx(8.0, rel=0.1)
    settled = outcomes[5:]
    assert sorted(d for _, d in settled)[len(settled) // 2] <= 0.5
    assert max(d for _, d in settled) <= LATE_CAP
    assert sum(p for p, _ in settled) / len(settled) <= 6  # a 0.5 s poller needs ~16


async def test_a_sudden_doubling_is_followed_within_a_few_jobs() -> None:
    script = [(0.0, 10.0)] * 20 + [(0.0, 20.0)] * 10
    outcomes, model = await run_sequentially(script)
    surprised = outcomes[20:23]
    assert all(delay <= LATE_CAP for _, delay in surprised)  # late jobs are still seen quickly
    assert math.exp(model.generation_log_normal(model_size())[0]) == pytest.approx(20.0, rel=0.1)
    settled = outcomes[24:]
    assert max(d for _, d in settled) <= 1.0
    assert sum(p for p, _ in settled) / len(settled) < sum(p for p, _ in surprised) / 3


async def test_finishes_outside_the_band_widen_the_forecast_at_once() -> None:
    model = DurationModel()
    await run_sequentially([(0.0, 10.0)] * 15, model=model)
    _, settled_spread = model.generation_log_normal(model_size())
    share_before = model.outlier_share()
    await run_sequentially([(0.0, 16.0)], model=model)
    assert model.outlier_share() > share_before
    _, spread_after = model.generation_log_normal(model_size())
    assert spread_after > settled_spread


async def test_a_queued_job_is_followed_and_its_queue_learned_separately() -> None:
    script = [(0.0, 10.0)] * 8 + [(12.0, 10.0)]
    outcomes, model = await run_sequentially(script)
    _, delay = outcomes[-1]
    assert delay <= 1.0
    assert model.queue_share() > 0.1
    assert math.exp(model.generation_log_normal(model_size())[0]) == pytest.approx(10.0, rel=0.1)


def test_upstream_eta_and_progress_take_over_when_non_zero() -> None:
    estimate = DurationEstimate(0.5, 1.0, 20.0, 3.0, 5)
    with_eta = PollState(elapsed=4.0, polls=2, status=TaskStatus.PROCESSING,
                         first_processing_at=2.0, upstream_eta=3.0)
    assert math.exp(finish_distribution(with_eta, estimate).log_median) == pytest.approx(3.0)
    halfway = PollState(elapsed=5.0, polls=2, status=TaskStatus.PROCESSING,
                        first_processing_at=2.0, upstream_percent=50.0)
    assert math.exp(finish_distribution(halfway, estimate).log_median) == pytest.approx(5.0)
    delay = AdaptivePlanner().next_delay(with_eta, estimate, random.Random(1))
    assert delay < 3.5  # polls around Novita's ETA, not the model's 20 s


def test_a_higher_poll_price_buys_fewer_polls_for_more_delay() -> None:
    estimate = DurationEstimate(0.0, 0.0, 20.0, 3.0, 20, outlier_share=0.02)

    def polls_and_delay(planner: AdaptivePlanner, finish: float) -> tuple[int, float]:
        rng, now, polls = random.Random(0), 0.0, 0
        while now < finish:
            state = PollState(elapsed=now, polls=polls,
                              status=TaskStatus.PROCESSING if polls else None)
            now += planner.next_delay(state, estimate, rng)
            polls += 1
        return polls, now - finish

    finishes = [20.0 * math.exp(z / 10) for z in range(-3, 4)]
    cheap = [polls_and_delay(AdaptivePlanner(delay_per_poll=0.02), f) for f in finishes]
    dear = [polls_and_delay(AdaptivePlanner(delay_per_poll=0.3), f) for f in finishes]
    assert sum(p for p, _ in cheap) > sum(p for p, _ in dear)
    assert sum(d for _, d in cheap) < sum(d for _, d in dear)


def model_size() -> ImageSize:
    return ImageSize(1024, 1024)



