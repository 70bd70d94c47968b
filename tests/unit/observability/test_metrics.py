"""The metrics registry, the loop-lag monitor, the metered Novita client and the HTTP server."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.imaging import ImageSize
from bot.novita.errors import RateLimitedError, TaskNotFoundError
from bot.novita.models import GeneratedImage, TaskResult
from bot.observability.http import ObservabilityServer
from bot.observability.loop_lag import LoopLagMonitor
from bot.observability.metrics import BotMetrics, error_kind
from bot.observability.upstream import MeteredTaskClient
from fakes.clock import ManualClock


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


async def test_loop_lag_records_the_oversleep() -> None:
    clock = ManualClock()
    late_by = iter([0.0, 0.1, 0.5])

    async def oversleeping(seconds: float) -> None:
        await clock.sleep(seconds + next(late_by))

    seen: list[float] = []
    monitor = LoopLagMonitor(seen.append, interval=0.25, clock=clock, sleep=oversleeping)
    await monitor.run(rounds=3)
    assert seen == pytest.approx([0.0, 0.1, 0.5])
    assert clock.sleeps == pytest.approx([0.25, 0.35, 0.75])


async def test_loop_lag_monitor_starts_once_records_each_round_and_stops() -> None:
    clock = ManualClock()
    seen: list[float] = []
    monitor = LoopLagMonitor(seen.append, interval=0.25, clock=clock, sleep=clock.sleep)
    monitor.start()
    monitor.start()  # idempotent: still one measuring task
    assert [t.get_name() for t in asyncio.all_tasks()].count("loop-lag-monitor") == 1
    for _ in range(5):
        await asyncio.sleep(0)
    await monitor.stop()
    await monitor.stop()
    assert "loop-lag-monitor" not in [t.get_name() for t in asyncio.all_tasks()]
    # Each round slept the interval on the manual clock, which never oversleeps: no lag.
    assert len(seen) >= 3 and seen == [0.0] * len(seen)
    assert clock.sleeps[: len(seen)] == [0.25] * len(seen)
    recorded = len(seen)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(seen) == recorded  # stopped: nothing more is recorded


class Recorder:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.errors: list[tuple[str, str]] = []

    def upstream_request(self, operation: str) -> None:
        self.requests.append(operation)

    def upstream_error(self, operation: str, kind: str) -> None:
        self.errors.append((operation, kind))


class FlakyClient:
    def __init__(self) -> None:
        self.block = asyncio.Event()

    async def submit(self, prompt: str, size: ImageSize) -> str:
        raise RateLimitedError("slow down")

    async def get_task(self, task_id: str) -> TaskResult:
        await self.block.wait()  # never set: the call is cancelled
        raise AssertionError

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        return b"jpeg"


async def test_metered_client_counts_calls_and_errors_by_kind() -> None:
    recorder = Recorder()
    client = MeteredTaskClient(FlakyClient(), recorder)
    with pytest.raises(RateLimitedError):
        await client.submit("p", ImageSize(512, 512))
    image = GeneratedImage("http://h/i.jpeg", 3600, "jpeg", None)
    assert await client.download(image, task_id="t") == b"jpeg"
    poll = asyncio.create_task(client.get_task("t"))
    await asyncio.sleep(0)
    poll.cancel()  # a job cancelled mid-poll is not an upstream error
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert recorder.requests == ["submit", "download", "poll"]
    assert recorder.errors == [("submit", "rate_limited")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_server_answers_health_readiness_and_metrics_over_a_socket() -> None:
    metrics = BotMetrics()
    metrics.job_started()
    reasons: list[str] = []

    async def readiness() -> list[str]:
        return list(reasons)

    server = ObservabilityServer(metrics.render, readiness, port=free_port())
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as resp:
                assert resp.status == 200
            async with http.get(base + "/readyz") as resp:
                assert (resp.status, await resp.json()) == (200, {"ready": True, "reasons": []})
            reasons.append("gateway not connected")
            async with http.get(base + "/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["reasons"] == ["gateway not connected"]
            async with http.get(base + "/metrics") as resp:
                assert resp.status == 200
                assert "imagine_jobs_started_total 1.0" in await resp.text()
    finally:
        await server.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz"):
            pass
