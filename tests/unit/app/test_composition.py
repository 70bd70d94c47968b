"""The composition root (`bot.app.composition`) against a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app.bot import ImagineBot
from bot.app.composition import NoNovita, Services, compose_bot
from bot.config import Secret, SecretUrl, Settings
from bot.imaging import ImageSize
from bot.jobs.fair_queue import FairQueue
from bot.observability.metrics import BotMetrics


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        novita_api_key=Secret("k"),
        novita_base_url="http://127.0.0.1:9",
        database_url=SecretUrl(f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'imagine.db'}"),
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def test_learned_durations_survive_a_restart(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = await Services.create(settings)
    size = ImageSize(1024, 1024)
    prior = first.engine.durations.expected(size).generation_mean
    for _ in range(8):
        first.engine.durations.observe(size, 7.0)
    learned = first.engine.durations.expected(size).generation_mean
    assert learned < prior
    await first.close()  # saves on shutdown

    second = await Services.create(settings)
    try:
        assert second.engine.durations.expected(size).generation_mean == learned
    finally:
        await second.close()


async def test_state_and_slots_come_from_settings(tmp_path: Path) -> None:
    services = await Services.create(settings_for(tmp_path, max_concurrent_upstream_tasks=3))
    try:
        assert isinstance(services.slots, FairQueue) and services.slots.capacity == 3
        await services.state.set("k", "v")
        assert await services.state.get("k") == "v"
        assert (tmp_path / "sub" / "imagine.db").exists()  # folder created on first run
    finally:
        await services.close()


async def test_sync_builds_every_service_with_a_stand_in_for_novita(tmp_path: Path) -> None:
    services = await Services.create(settings_for(tmp_path), with_novita=False)
    try:
        assert isinstance(services.client, NoNovita)
        with pytest.raises(RuntimeError, match="without a Novita client"):
            await services.client.submit("a fox", ImageSize(512, 512))
        assert (await services.guild_admin.snapshot(1)).guild_id == 1
        assert (await services.admissions.quota_status(1, 2)).next_request is None
    finally:
        await services.close()


async def test_every_repository_is_built_once_and_shared(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    services = await Services.create(settings)
    bot = ImagineBot(settings, services=services, sync_on_start=False)
    parts = compose_bot(services, settings, bot, metrics=BotMetrics(), owner_id="this-process")
    try:
        repositories = services.repositories
        assert services.member_history is repositories.member_history
        assert services.state is repositories.state
        # One ledger under admission, administration, the journal and member history.
        for holder in (services.admissions, services.guild_admin, repositories.journal,
                       repositories.member_history):
            assert holder._ledger is repositories.ledger  # type: ignore[attr-defined]
        # One journal for the job's life and for taking jobs back; one outbox per bot.
        assert parts.lifecycle.collaborators.journal is repositories.journal
        assert parts.recovery.journal is repositories.journal
        assert parts.displays.outbox is parts.lifecycle.outbox
        assert parts.lifecycle.outbox.outage is services.outage
        assert parts.generation.jobs is parts.lifecycle.jobs
        assert parts.lifecycle.collaborators.engine is services.engine
    finally:
        await parts.generation.close()
        await services.close()
