"""Per-guild config versions: every admin change bumps its guild's number in the same transaction.

Admission caches what it needs from a guild's settings, role limits and moderation lists, and
reads the versions inside its own (locked) transaction: a cached copy whose version still matches
is exactly what the tables hold, in this process or any other sharing the database.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.database import Database
from bot.storage.schema import config_versions


async def bump(db: Database, conn: AsyncConnection, guild_id: int) -> None:
    """Call inside the transaction that changes the guild's config."""
    table = config_versions
    stmt = db.insert(table).values(guild_id=guild_id, version=1)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.guild_id], set_={"version": table.c.version + 1}
        )
    )


async def add_guild_row(
    db: Database, table: Table, guild_id: int, values: Mapping[str, Any]
) -> bool:
    """Add one row to a guild's config list, bumping its version in the same transaction; False
    if the row was there already."""
    async with db.write() as conn:
        await bump(db, conn, guild_id)
        return await db.insert_ignoring_duplicate(conn, table, {"guild_id": guild_id, **values})


async def remove_guild_row(db: Database, table: Table, guild_id: int, **keys: object) -> bool:
    """Delete the guild's config row with these keys, bumping its version in the same
    transaction; False if there was none."""
    async with db.write() as conn:
        await bump(db, conn, guild_id)
        matches = [table.c[name] == value for name, value in keys.items()]
        result = await conn.execute(delete(table).where(table.c.guild_id == guild_id, *matches))
    return bool(result.rowcount)


async def read(conn: AsyncConnection, guild_ids: Collection[int]) -> dict[int, int]:
    """The versions of these guilds (0 for a guild that never changed anything)."""
    wanted = sorted(set(guild_ids))
    rows = await conn.execute(
        select(config_versions.c.guild_id, config_versions.c.version).where(
            config_versions.c.guild_id.in_(wanted)
        )
    )
    found = {int(guild): int(version) for guild, version in rows}
    return {guild: found.get(guild, 0) for guild in wanted}
