"""The metrics registry: error kinds as labels, one registry per bot, live values at scrape time."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bot.novita.errors import RateLimitedError, TaskNotFoundError
from bot.observability.metrics import BotMetrics, error_kind


def samples(metrics: BotMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_error_kinds_read_as_labels() -> None:
    assert error_kind(RateLimitedError("x")) == "rate_limited"
    assert error_kind(TaskNotFoundError("x")) == "task_not_found"
    assert error_kind(TimeoutError()) == "timeout"
    assert error_kind(ValueError()) == "value"


def test_each_bot_has_its_own_registry() -> None:
    first, second = BotMetrics(), BotMetrics()
    first.job_finished("succeeded", 12.0)
    first.admission("refused")
    assert samples(first)[("imagine_jobs_finished_total", (("outcome", "succeeded"),))] == 1
    assert samples(first)[("imagine_admissions_total", (("result", "refused"),))] == 1
    assert ("imagine_jobs_finished_total", (("outcome", "succeeded"),)) not in samples(second)


def test_live_values_are_read_at_scrape_time() -> None:
    @dataclass
    class Stats:
        submits: int = 0
        polls: int = 0
        downloads: int = 0
        retries: int = 0

    metrics, stats, jobs = BotMetrics(), Stats(), [1, 2, 3]
    metrics.track_client_attempts(lambda: stats)
    metrics.track_in_flight(lambda: len(jobs))
    usable = [True]
    metrics.track_database_usable(lambda: usable[0])
    stats.polls, stats.retries = 7, 2
    usable[0] = False
    found = samples(metrics)
    assert found[("imagine_upstream_http_attempts_total", (("operation", "poll"),))] == 7
    assert found[("imagine_upstream_retries_total", ())] == 2
    assert found[("imagine_jobs_in_flight", ())] == 3
    assert found[("imagine_database_usable", ())] == 0
