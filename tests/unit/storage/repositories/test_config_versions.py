"""Config versions on both backends: every added or removed config row bumps its guild's version
(only that guild's, and only when it is a change the caller asked for)."""

from __future__ import annotations

import datetime as dt

from bot.storage.database import Database
from bot.storage.repositories import config_versions
from bot.storage.schema import blocked_terms, exempt_roles


async def _versions(database: Database, *guild_ids: int) -> dict[int, int]:
    async with database.read() as conn:
        return await config_versions.read(conn, guild_ids)


async def test_adding_and_removing_a_guild_row_bumps_that_guild_only(database: Database) -> None:
    assert await _versions(database, 1, 2) == {1: 0, 2: 0}
    assert await config_versions.add_guild_row(database, exempt_roles, 1, {"role_id": 10})
    assert not await config_versions.add_guild_row(database, exempt_roles, 1, {"role_id": 10})
    assert await _versions(database, 1, 2) == {1: 2, 2: 0}  # a repeat still bumps: it was asked

    assert not await config_versions.remove_guild_row(database, exempt_roles, 2, role_id=10)
    assert await config_versions.remove_guild_row(database, exempt_roles, 1, role_id=10)
    assert not await config_versions.remove_guild_row(database, exempt_roles, 1, role_id=10)
    assert await _versions(database, 1, 2) == {1: 4, 2: 1}


async def test_remove_guild_row_matches_every_key_given(database: Database) -> None:
    values = {"added_by": None, "created_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    for term in ("gore", "blood"):
        await config_versions.add_guild_row(database, blocked_terms, 1, {"term": term} | values)
    assert await config_versions.remove_guild_row(database, blocked_terms, 1, term="gore")
    async with database.read() as conn:
        rows = await conn.execute(blocked_terms.select())
        assert [row.term for row in rows] == ["blood"]
