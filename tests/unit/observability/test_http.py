"""The health, readiness and metrics server over a real socket."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from bot.observability.http import ObservabilityServer
from bot.observability.metrics import BotMetrics


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
