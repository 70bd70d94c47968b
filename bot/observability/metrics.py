"""Every Prometheus series the bot exports, in one registry per bot (never the global one).

A registry per `BotMetrics` lets tests run several bots in one process. The edge and the
instrumented wrappers call the small recording methods below; nothing else touches the
`prometheus_client` objects, so names, labels and buckets are defined in this module only.
All series are prefixed `imagine_`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX: Final = "imagine"

# Seconds. Queue waits are short unless the bot-wide slot cap is reached.
QUEUE_WAIT_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Seconds. Qwen-Image takes ~10-40 s; the default job deadline is 300 s.
JOB_DURATION_BUCKETS: Final = (1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
POLL_BUCKETS: Final = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100)
# Seconds. Discord wants an acknowledgement within 3 s.
ACK_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5)
LOOP_LAG_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

_CAMEL_BOUNDARY: Final = re.compile(r"(?<!^)(?=[A-Z])")


def error_kind(error: BaseException) -> str:
    """A label from an exception type: `RateLimitedError` → `rate_limited`."""
    name = type(error).__name__.removesuffix("Error") or type(error).__name__
    return _CAMEL_BOUNDARY.sub("_", name).lower()


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._admissions = Counter(
            f"{PREFIX}_admissions", "Admission decisions for /imagine and Re-roll, by result.",
            ["result"], registry=r)
        self._jobs_started = Counter(
            f"{PREFIX}_jobs_started", "Jobs admitted and started in this process.", registry=r)
        self._jobs_finished = Counter(
            f"{PREFIX}_jobs_finished", "Jobs that ended, by outcome.", ["outcome"], registry=r)
        self._queue_wait = Histogram(
            f"{PREFIX}_job_queue_wait_seconds",
            "Time a job waited for a bot-wide upstream slot.",
            buckets=QUEUE_WAIT_BUCKETS, registry=r)
        self._job_duration = Histogram(
            f"{PREFIX}_job_duration_seconds",
            "Whole job time, admission to outcome, by outcome.",
            ["outcome"], buckets=JOB_DURATION_BUCKETS, registry=r)
        self._polls = Histogram(
            f"{PREFIX}_job_polls",
            "Task-result polls a successful job needed (fewer is cheaper; the delay between "
            "the task finishing and the bot noticing is not observable from here).",
            buckets=POLL_BUCKETS, registry=r)
        self._upstream_requests = Counter(
            f"{PREFIX}_upstream_requests",
            "Calls to Novita by operation (submit, edit, poll, download), retries included.",
            ["operation"], registry=r)
        self._upstream_errors = Counter(
            f"{PREFIX}_upstream_errors",
            "Novita calls that failed after their retries, by operation and error kind.",
            ["operation", "kind"], registry=r)
        self._discord_edits = Counter(
            f"{PREFIX}_discord_edits",
            "Message edits sent to Discord, by target (interaction or channel message).",
            ["target"], registry=r)
        self._discord_rate_limited = Counter(
            f"{PREFIX}_discord_rate_limited",
            "HTTP 429 answers from Discord, by request kind and scope.",
            ["kind", "scope"], registry=r)
        self._discord_errors = Counter(
            f"{PREFIX}_discord_errors",
            "Other 4xx/5xx answers from Discord, by request kind and status.",
            ["kind", "status"], registry=r)
        self._ack_latency = Histogram(
            f"{PREFIX}_interaction_ack_seconds",
            "From an interaction's creation (its snowflake) to our answer reaching Discord.",
            buckets=ACK_BUCKETS, registry=r)
        self._loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the event loop woke a 0.25 s sleep (blocking code shows up here).",
            buckets=LOOP_LAG_BUCKETS, registry=r)
        self._in_flight = Gauge(
            f"{PREFIX}_jobs_in_flight", "Jobs running or queued in this process.", registry=r)
        self._database_usable = Gauge(
            f"{PREFIX}_database_usable",
            "1 while the database is usable (0 after the SQLite file was deleted or replaced).",
            registry=r)
        self._database_usable.set(1)
        self._session_starts_remaining = Gauge(
            f"{PREFIX}_discord_session_starts_remaining",
            "Discord session starts (IDENTIFYs) left in the bot's daily budget, read before "
            "this process logged in (NaN until read).", registry=r)
        self._session_starts_remaining.set(float("nan"))
        self._session_starts_budget = Gauge(
            f"{PREFIX}_discord_session_starts_budget",
            "Discord's daily session-start budget for this bot (NaN until read).", registry=r)
        self._session_starts_budget.set(float("nan"))

    # ---- recording -----------------------------------------------------------------------------

    def admission(self, result: str) -> None:
        """result: allowed, refused, busy (limit check too slow) or unavailable (database)."""
        self._admissions.labels(result=result).inc()

    def job_started(self) -> None:
        self._jobs_started.inc()

    def job_finished(self, outcome: str, seconds: float) -> None:
        self._jobs_finished.labels(outcome=outcome).inc()
        self._job_duration.labels(outcome=outcome).observe(max(0.0, seconds))

    def queue_wait(self, seconds: float) -> None:
        self._queue_wait.observe(max(0.0, seconds))

    def job_polls(self, polls: int) -> None:
        self._polls.observe(polls)

    def upstream_request(self, operation: str) -> None:
        self._upstream_requests.labels(operation=operation).inc()

    def upstream_error(self, operation: str, kind: str) -> None:
        self._upstream_errors.labels(operation=operation, kind=kind).inc()

    def discord_edit(self, target: str) -> None:
        self._discord_edits.labels(target=target).inc()

    def discord_rate_limited(self, kind: str, scope: str) -> None:
        self._discord_rate_limited.labels(kind=kind, scope=scope).inc()

    def discord_error(self, kind: str, status: int) -> None:
        self._discord_errors.labels(kind=kind, status=str(status)).inc()

    def acknowledged(self, seconds: float) -> None:
        self._ack_latency.observe(max(0.0, seconds))

    def loop_lag(self, seconds: float) -> None:
        self._loop_lag.observe(max(0.0, seconds))

    def session_starts(self, remaining: int, total: int) -> None:
        """Discord's session-start budget as read before logging in."""
        self._session_starts_remaining.set(remaining)
        self._session_starts_budget.set(total)

    # ---- live values, read at scrape time ------------------------------------------------------

    def track_in_flight(self, count: Callable[[], int]) -> None:
        self._in_flight.set_function(lambda: float(count()))

    def track_database_usable(self, usable: Callable[[], bool]) -> None:
        self._database_usable.set_function(lambda: 1.0 if usable() else 0.0)

    def track_client_attempts(self, stats: Callable[[], object]) -> None:
        """Export a Novita client's per-attempt counters (`NovitaClient.stats`) as they are."""
        self.registry.register(_ClientStatsCollector(stats))

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class _ClientStatsCollector(Collector):
    """HTTP attempts as the Novita client counts them (each retry is one more attempt)."""

    def __init__(self, stats: Callable[[], object]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        attempts = CounterMetricFamily(
            f"{PREFIX}_upstream_http_attempts",
            "HTTP requests sent to Novita (and image hosts), by operation, each retry counted.",
            labels=["operation"],
        )
        for operation, attribute in (("submit", "submits"), ("poll", "polls"),
                                     ("download", "downloads")):
            attempts.add_metric([operation], float(getattr(stats, attribute, 0)))
        yield attempts
        yield CounterMetricFamily(
            f"{PREFIX}_upstream_retries", "Novita calls retried after a transient failure.",
            value=float(getattr(stats, "retries", 0)),
        )
