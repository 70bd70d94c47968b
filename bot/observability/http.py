"""A small HTTP server for orchestrators and Prometheus: /healthz, /readyz and /metrics.

* `/healthz` — 200 while the process runs its event loop (liveness: restart me if this fails).
* `/readyz` — 200 when every readiness check passes, else 503 with `{"ready": false,
  "reasons": [...]}` (route no traffic / alert; the checks are given by the composition root).
* `/metrics` — the bot's own registry in Prometheus' text format.

Off unless `METRICS_PORT` is set; it binds `METRICS_HOST` (127.0.0.1 by default) because the
numbers are meant for the operator, not the internet.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

# Returns the reasons the bot is not ready; an empty list means ready.
ReadinessCheck = Callable[[], Awaitable[list[str]]]


class ObservabilityServer:
    def __init__(
        self,
        render_metrics: Callable[[], bytes],
        readiness: ReadinessCheck,
        *,
        host: str = "127.0.0.1",
        port: int,
    ) -> None:
        self._render_metrics = render_metrics
        self._readiness = readiness
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("health and metrics on http://%s:%d (/healthz, /readyz, /metrics)",
                 self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _readyz(self, _request: web.Request) -> web.Response:
        reasons = await self._readiness()
        return web.json_response(
            {"ready": not reasons, "reasons": reasons}, status=503 if reasons else 200
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self._render_metrics())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
