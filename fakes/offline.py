"""`generate --mock`: a job engine on an embedded mock Novita, with its clock scaled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.config import Secret
from bot.jobs.engine import JobEngine, JobSettings, TaskClient
from bot.novita.client import NovitaClient
from fakes.clock import ScaledClock
from fakes.novita.server import MockNovita, MockNovitaConfig


@asynccontextmanager
async def mock_engine(time_scale: float) -> AsyncIterator[tuple[JobEngine, float]]:
    config = MockNovitaConfig(time_scale=time_scale, seed=None)
    async with MockNovita(config) as mock, NovitaClient(
        Secret(config.api_key),
        mock.base_url,
        max_submits_per_minute=0,
        trusted_image_hosts=[mock.base_url.removeprefix("http://")],  # its images are on loopback
    ) as client:
        # The engine thinks in unscaled seconds, so its learned durations and polling fit the mock.
        task_client: TaskClient = client
        clock = ScaledClock(time_scale)
        yield JobEngine(task_client, JobSettings(), clock=clock, sleep=clock.sleep), time_scale
