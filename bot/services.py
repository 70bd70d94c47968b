"""The shared services one bot process needs, built once and closed once.

Production calls `Services.create(settings)`: the database (migrated at start-up), the ledger-
backed gate (limits and moderation), the fair queue in front of Novita, the Novita client and
the job engine, whose learned durations are loaded from and saved to the database.
Tests and the demo can assemble `Services` themselves and hand them to `ImagineBot`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final, Protocol

from bot.config import Settings
from bot.gate import GenerationGate
from bot.imaging import ImageSize
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.fair_queue import FairQueue, JobSlots, UnboundedSlots
from bot.jobs.keeper import DurationKeeper
from bot.jobs.strategies import poll_strategy
from bot.limits.gate import LedgerGate
from bot.limits.service import AdmissionService
from bot.novita.client import NovitaClient
from bot.novita.models import GeneratedImage, TaskResult
from bot.storage.database import Database
from bot.storage.durations import DurationStore
from bot.storage.state import StateStore

log = logging.getLogger(__name__)

DURATIONS_SAVE_INTERVAL: Final = 60.0


class KeyValueState(Protocol):
    """Small pieces of bot state that must survive restarts (e.g. the command-tree hash)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...


@dataclass
class Services:
    engine: JobEngine
    gate: GenerationGate
    state: KeyValueState
    client: NovitaClient | None = None
    slots: JobSlots = field(default_factory=UnboundedSlots)
    database: Database | None = None
    admissions: AdmissionService | None = None
    durations: DurationKeeper | None = None

    @classmethod
    async def create(cls, settings: Settings, *, with_novita: bool = True) -> Services:
        database = await Database.connect(settings.database_url)
        try:
            admissions = AdmissionService.from_settings(database, settings)
            keeper = await DurationKeeper.load(DurationStore(database), DURATIONS_SAVE_INTERVAL)
            client = NovitaClient.from_settings(settings) if with_novita else None
            planner = poll_strategy(
                settings.poll_strategy, settings.poll_min_interval, settings.poll_max_interval
            )
            engine = JobEngine(
                client or _NoClient(), JobSettings.from_settings(settings), keeper.model,
                planner=planner,
            )
        except BaseException:
            await database.close()
            raise
        keeper.start()
        return cls(
            engine=engine,
            gate=LedgerGate(admissions),
            state=StateStore(database),
            client=client,
            slots=FairQueue(settings.max_concurrent_upstream_tasks),
            database=database,
            admissions=admissions,
            durations=keeper,
        )

    async def close(self) -> None:
        if self.durations is not None:
            await self.durations.stop()
        if self.client is not None:
            await self.client.close()
        if self.database is not None:
            await self.database.close()


class _NoClient:
    """Stands in for Novita in `python -m bot sync`, which never generates anything."""

    async def submit(self, prompt: str, size: ImageSize) -> str:
        raise RuntimeError("this process was started without a Novita client")

    async def get_task(self, task_id: str) -> TaskResult:
        raise RuntimeError("this process was started without a Novita client")

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        raise RuntimeError("this process was started without a Novita client")
