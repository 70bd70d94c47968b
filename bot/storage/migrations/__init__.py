"""Numbered schema migrations, applied in order at start-up (read them in order: v1, v2, v3, v4, …).

Each migration is a module `v<N>_<name>.py` in this package with `VERSION` (= N), `NAME` and
`async def upgrade(conn)`; it defines the tables *as they were at that version*, so old
migrations never change. Adding one is adding its module: they are found by name, ordered by
`VERSION`, and start-up refuses a gap, a duplicate or a file whose number is not its `VERSION`.
`schema_version` keeps one row per applied migration. All pending migrations run in one
transaction under the write lock, so two processes starting together cannot both apply them,
and a failure leaves the old schema.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import pkgutil
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.columns import UtcTimestamp

if TYPE_CHECKING:
    from bot.storage.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[AsyncConnection], Awaitable[None]]


class MigrationOrderError(RuntimeError):
    """The migration modules do not number 1..N, each once: a release packaging mistake."""


_MODULE_NAME: Final = re.compile(r"^v(\d+)_\w+$")


def in_order(migrations: Iterable[Migration]) -> tuple[Migration, ...]:
    """`migrations` sorted by version, which must run 1..N without a gap or a duplicate."""
    ordered = tuple(sorted(migrations, key=lambda migration: migration.version))
    versions = [migration.version for migration in ordered]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationOrderError(f"migration versions must be 1..N, each once; found {versions}")
    return ordered


def discover(package: str = __name__) -> tuple[Migration, ...]:
    """Every `v<N>_<name>` module of `package`, in version order (checked by `in_order`)."""
    found: list[Migration] = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        named = _MODULE_NAME.match(info.name)
        if named is None:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if int(named.group(1)) != module.VERSION:
            raise MigrationOrderError(f"{info.name} declares VERSION = {module.VERSION}")
        found.append(Migration(module.VERSION, module.NAME, module.upgrade))
    return in_order(found)


MIGRATIONS: Final[tuple[Migration, ...]] = discover()
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
