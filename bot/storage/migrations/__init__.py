"""Numbered schema migrations, applied in order at start-up (read them in order: v1, v2, v3, v4, …).

Each migration is a module with `VERSION`, `NAME` and `async def upgrade(conn)`; it defines the
tables *as they were at that version*, so old migrations never change. `schema_version` keeps one
row per applied migration. All pending migrations run in one transaction under the write lock,
so two processes starting together cannot both apply them, and a failure leaves the old schema.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.columns import UtcTimestamp
from bot.storage.migrations import (
    v1_core,
    v2_jobs,
    v3_state,
    v4_result_messages,
    v5_crash_journal,
    v6_admission_cache,
    v7_job_kind,
    v8_pending_deliveries,
    v9_parent_link,
    v10_job_stage,
)

if TYPE_CHECKING:
    from bot.storage.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[AsyncConnection], Awaitable[None]]


MIGRATIONS: Final[tuple[Migration, ...]] = tuple(
    Migration(module.VERSION, module.NAME, module.upgrade)
    for module in (
        v1_core, v2_jobs, v3_state, v4_result_messages, v5_crash_journal, v6_admission_cache,
        v7_job_kind,
        v8_pending_deliveries,
        v9_parent_link,
        v10_job_stage,
    )
)
LATEST_VERSION: Final = MIGRATIONS[-1].version
MIGRATION_LOCK: Final = "schema-migrations"

_version_metadata = MetaData()
schema_version = Table(
    "schema_version", _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", UtcTimestamp, nullable=False),
)


class SchemaTooNewError(RuntimeError):
    """The database was upgraded by a newer release of the bot; refuse rather than corrupt it."""

    def __init__(self, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            f"the database schema is version {found}, but this bot only knows up to {known}; "
            "run a newer release or restore a backup"
        )


async def current_version(conn: AsyncConnection) -> int:
    """The highest applied migration (0 for an empty database)."""
    await conn.run_sync(_version_metadata.create_all)
    found = (await conn.execute(select(func.max(schema_version.c.version)))).scalar_one()
    return int(found or 0)


async def migrate(db: Database, target: int | None = None) -> list[int]:
    """Apply pending migrations up to `target` (default: all); returns the versions applied."""
    goal = LATEST_VERSION if target is None else target
    async with db.write([MIGRATION_LOCK]) as conn:
        found = await current_version(conn)
        if found > LATEST_VERSION:
            raise SchemaTooNewError(found, LATEST_VERSION)
        applied: list[int] = []
        for migration in MIGRATIONS:
            if found < migration.version <= goal:
                log.info("applying database migration V%d: %s", migration.version, migration.name)
                await migration.upgrade(conn)
                await conn.execute(
                    schema_version.insert().values(
                        version=migration.version,
                        name=migration.name,
                        applied_at=dt.datetime.now(dt.UTC),
                    )
                )
                applied.append(migration.version)
        return applied
