"""The composition root: every repository and service built once, and injected.

`Services.create(settings)` builds what a process shares: the database (migrated at start-up)
and every repository over it (`Repositories`), admission (limits and moderation over the usage
ledger), guild administration, the fair queue in front of Novita, the Novita client and the job
engine (and the edit runner on it), whose learned durations are loaded from and saved to the
database. `python -m bot sync` alone builds it without Novita (`NoNovita` stands in).

`compose_bot(services, settings, client, ...)` builds what one running bot adds on top: the job
lifecycle (`bot.jobs.lifecycle`) with its collaborators, the Discord displays, the generation
service, job recovery and retention. `ImagineBot.setup_hook` asks for both, and nothing else
constructs a service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, Protocol

import discord

from bot.config import Settings
from bot.imaging import ImageSize
from bot.interactions.components import buttons as components
from bot.interactions.display import JobDisplays, Views
from bot.interactions.generation import GenerationCollaborators, GenerationService
from bot.jobs.edits import EDIT_DURATIONS_KEY, EditClient, EditRunner
from bot.jobs.engine import JobEngine, TaskClient
from bot.jobs.fair_queue import FairQueue, JobSlots
from bot.jobs.lifecycle import JobCollaborators, JobLifecycle
from bot.jobs.polling.keeper import DurationKeeper
from bot.jobs.recovery import JobRecovery
from bot.limits.admin import GuildAdmin
from bot.limits.admission import AdmissionService
from bot.novita.client import ClientStats, NovitaClient
from bot.novita.edit import EditSource
from bot.novita.models import GeneratedImage, TaskResult
from bot.observability.metrics import BotMetrics
from bot.storage.database import Database
from bot.storage.reliability.outage import OutageLog
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.reliability.retention import RetentionTask
from bot.storage.repositories.member_history import MemberHistory
from bot.storage.repository_set import Repositories

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
    """What one process shares (a bot restarted in tests runs on the same services)."""

    database: Database
    repositories: Repositories
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
    # One log line per database outage, shared by commands, writes and heartbeats.
    outage: OutageLog

    @classmethod
    async def create(
        cls, settings: Settings, *, with_novita: bool = True, database: Database | None = None
    ) -> Services:
        """Build every service; a `database` already opened (`open_database`) is taken over."""
        database = database or await open_database(settings)
        repositories = Repositories.over(database)
        try:
            admissions = AdmissionService.from_settings(repositories, settings)
            keeper = await DurationKeeper.load(repositories.durations, DURATIONS_SAVE_INTERVAL)
            edit_keeper = await DurationKeeper.load(
                repositories.durations, DURATIONS_SAVE_INTERVAL, EDIT_DURATIONS_KEY
            )
            client: UpstreamClient = (
                NovitaClient.from_settings(settings) if with_novita else NoNovita()
            )
            engine = JobEngine.from_settings(client, settings, keeper.model)
        except BaseException:
            await database.close()
            raise
        keeper.start()
        edit_keeper.start()
        return cls(
            database=database,
            repositories=repositories,
            admissions=admissions,
            guild_admin=GuildAdmin(repositories, admissions.defaults),
            client=client,
            engine=engine,
            edits=EditRunner(engine, client, edit_keeper.model),
            slots=FairQueue(settings.max_concurrent_upstream_tasks),
            durations=keeper,
            edit_durations=edit_keeper,
            state=repositories.state,
            member_history=repositories.member_history,
            outage=OutageLog(),
        )

    async def close(self) -> None:
        await self.admissions.close()
        await self.durations.stop()
        await self.edit_durations.stop()
        await self.client.close()
        await self.database.close()


@dataclass(frozen=True)
class BotParts:
    """What one running bot adds to the services (built per start: each has its own outbox)."""

    lifecycle: JobLifecycle
    displays: JobDisplays
    generation: GenerationService
    recovery: JobRecovery
    retention: RetentionTask


class ClientShards:
    """The shards a Discord client runs, as job recovery asks for them."""

    def __init__(self, client: discord.AutoShardedClient) -> None:
        self._client = client

    def shard_ids(self) -> list[int]:
        return list(self._client.shards)

    def shard_count(self) -> int:
        return self._client.shard_count or 1


def compose_bot(
    services: Services,
    settings: Settings,
    client: discord.AutoShardedClient,
    *,
    metrics: BotMetrics,
    owner_id: str,
) -> BotParts:
    """Wire one bot: the job lifecycle and its Discord display, generation, recovery."""
    repositories = services.repositories
    outbox = WriteOutbox(services.outage)
    shards = ClientShards(client)
    lifecycle = JobLifecycle(JobCollaborators.over(
        repositories.journal, outbox, engine=services.engine, edits=services.edits,
        slots=services.slots, metrics=metrics, owner_id=owner_id,
        shard_count=shards.shard_count,
    ))
    displays = JobDisplays(
        client,
        Views(running=components.running_view, finished=components.finished_view),
        services.admissions,
        outbox,
        repositories.member_history,
        repositories.kept_results.keep,
        progress_edit_interval=settings.progress_edit_interval,
        progress_edits_per_second=settings.progress_edits_per_second,
    )
    database = services.database
    generation = GenerationService(GenerationCollaborators(
        lifecycle=lifecycle,
        displays=displays,
        admissions=services.admissions,
        kept_results=repositories.kept_results,
        metrics=metrics,
        database_usable=lambda: database.is_usable,
    ))
    recovery = JobRecovery(
        lifecycle, displays, shards,
        journal=repositories.journal, owners=repositories.shard_owners,
        ledger=repositories.ledger, owner_id=owner_id,
        heartbeat_interval=settings.job_owner_heartbeat,
    )
    retention = RetentionTask(database, settings.retention_days, services.outage)
    return BotParts(lifecycle, displays, generation, recovery, retention)


async def open_database(settings: Settings) -> Database:
    """Open and migrate the configured database, with the configured timeouts."""
    return await Database.connect(
        settings.database_url.reveal(),
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
