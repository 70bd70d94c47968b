"""Everything admission needs to know about one guild, read in one transaction.

Admission keeps a snapshot per guild with the guild's config version (`config_versions`) and
reads it again only when an admin change bumped that version.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.repositories.guild_settings import GuildConfig, read_config
from bot.storage.repositories.roles import RoleOverride, override_from_row
from bot.storage.schema import (
    allowed_channels,
    banned_users,
    blocked_terms,
    exempt_roles,
    role_overrides,
)


@dataclass(frozen=True)
class GuildSnapshot:
    config: GuildConfig
    role_overrides: tuple[RoleOverride, ...]
    exempt_role_ids: frozenset[int]
    blocked_terms: tuple[str, ...]
    allowed_channel_ids: frozenset[int]  # empty = every channel
    banned_user_ids: frozenset[int]


async def read_snapshot(conn: AsyncConnection, guild_id: int) -> GuildSnapshot:
    config = await read_config(conn, guild_id)
    overrides = await conn.execute(
        select(role_overrides).where(role_overrides.c.guild_id == guild_id)
    )
    exempt = await conn.execute(
        select(exempt_roles.c.role_id).where(exempt_roles.c.guild_id == guild_id)
    )
    terms = await conn.execute(
        select(blocked_terms.c.term)
        .where(blocked_terms.c.guild_id == guild_id)
        .order_by(blocked_terms.c.term)
    )
    channels = await conn.execute(
        select(allowed_channels.c.channel_id).where(allowed_channels.c.guild_id == guild_id)
    )
    banned = await conn.execute(
        select(banned_users.c.user_id).where(banned_users.c.guild_id == guild_id)
    )
    return GuildSnapshot(
        config=config,
        role_overrides=tuple(override_from_row(row) for row in overrides.mappings()),
        exempt_role_ids=frozenset(exempt.scalars()),
        blocked_terms=tuple(terms.scalars()),
        allowed_channel_ids=frozenset(channels.scalars()),
        banned_user_ids=frozenset(banned.scalars()),
    )
