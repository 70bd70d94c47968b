"""The shared services one bot process needs, built once and closed once: the composition root.

Production calls `Services.create(settings)`: the database (migrated at start-up), admission
(limits and moderation over the usage ledger), guild administration, the fair queue in front of
Novita, the Novita client and the job engine (and the edit runner on it), whose learned durations
are loaded from and saved to the database. `python -m bot sync` builds the same without Novita
(`NoNovita` stands in).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, Protocol

from bot.config import Settings
from bot.imaging import ImageSize
from bot.jobs.edits import EDIT_DURATIONS_KEY, EditClient, EditRunner
from bot.jobs.engine import JobEngine, JobSettings, TaskClient
from bot.jobs.fair_queue import FairQueue, JobSlots
from bot.jobs.polling.keeper import DurationKeeper
from bot.jobs.polling.strategies import poll_strategy
from bot.limits.admin import GuildAdmin
from bot.limits.admission import AdmissionService
from bot.novita.client import ClientStats, NovitaClient
from bot.novita.edit import EditSource
from bot.novita.models import GeneratedImage, TaskResult
from bot.storage.database import Database
from bot.storage.repositories.member_history import MemberHistory
from bot.storage.repositories.state import DurationStore, StateStore

log = logging.getLogger(__name__)

DURATIONS_SAVE_INTERVAL: Final = 60.0


class KeyValueState(Protocol):
    """Small pieces of bot state that must survive restarts (e.g. the command-tree hash)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...


class UpstreamClient(TaskClient, EditClient, Protocol):
    """What the job engine talks to (Novita), closed with the process."""

    @property
    def stats(self) -> ClientStats: ...

    async def close(self) -> None: ...


@dataclass
class Services:
    database: Database
    admissions: AdmissionService
    guild_admin: GuildAdmin
    client: UpstreamClient
    engine: JobEngine
    edits: EditRunner
    slots: JobSlots
    durations: DurationKeeper
    edit_durations: DurationKeeper
    state: KeyValueState
    member_history: MemberHistory

    @classmethod
    async def create(
        cls, settings: Settings, *, with_novita: bool = True, database: Database | None = None
    ) -> Services:
        """Build every service; a `database` already opened (`open_database`) is taken over."""
        database = database or await open_database(settings)
        try:
            admissions = AdmissionService.from_settings(database, settings)
            keeper = await DurationKeeper.load(DurationStore(database), DURATIONS_SAVE_INTERVAL)
            edit_keeper = await DurationKeeper.load(
                DurationStore(database), DURATIONS_SAVE_INTERVAL, EDIT_DURATIONS_KEY
            )
            client: UpstreamClient = (
                NovitaClient.from_settings(settings) if with_novita else NoNovita()
            )
            planner = poll_strategy(
                settings.poll_strategy, settings.poll_min_interval, settings.poll_max_interval
            )
            engine = JobEngine(
                client, JobSettings.from_settings(settings), keeper.model, planner=planner
            )
        except BaseException:
            await database.close()
            raise
        keeper.start()
        edit_keeper.start()
        return cls(
            database=database,
            admissions=admissions,
            guild_admin=GuildAdmin(database, admissions.defaults),
            client=client,
            engine=engine,
            edits=EditRunner(engine, client, edit_keeper.model),
            slots=FairQueue(settings.max_concurrent_upstream_tasks),
            durations=keeper,
            edit_durations=edit_keeper,
            state=StateStore(database),
            member_history=MemberHistory(database),
        )

    async def close(self) -> None:
        await self.admissions.close()
        await self.durations.stop()
        await self.edit_durations.stop()
        await self.client.close()
        await self.database.close()


async def open_database(settings: Settings) -> Database:
    """Open and migrate the configured database, with the configured timeouts."""
    return await Database.connect(
        settings.database_url,
        connect_timeout=settings.database_connect_timeout,
        command_timeout=settings.database_command_timeout,
    )


class NoNovita:
    """Stands in for Novita in `python -m bot sync`, which never generates anything."""

    def __init__(self) -> None:
        self._stats = ClientStats()

    @property
    def stats(self) -> ClientStats:
        return self._stats

    async def submit(self, prompt: str, size: ImageSize) -> str:
        raise RuntimeError("this process was started without a Novita client")

    async def submit_edit(
        self,
        instruction: str,
        image: EditSource,
        *,
        seed: int | None = None,
        output_format: str = "jpeg",
    ) -> str:
        raise RuntimeError("this process was started without a Novita client")

    async def get_task(self, task_id: str) -> TaskResult:
        raise RuntimeError("this process was started without a Novita client")

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        raise RuntimeError("this process was started without a Novita client")

    async def close(self) -> None:
        """Nothing to close."""
