"""A guild's moderation lists: blocked prompt terms, allowed channels, banned members.

Stored as given; `bot.limits.blocked_terms.normalize_term` is what turns a moderator's input
into the stored form, and `AdmissionService` is what applies these rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from bot.clock import WallClock, utc_now
from bot.storage.database import Database
from bot.storage.repositories import config_versions
from bot.storage.schema import allowed_channels, banned_users, blocked_terms


@dataclass(frozen=True)
class Ban:
    user_id: int
    reason: str | None
    banned_by: int | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ModerationRules:
    """Everything admission needs to know about one member's request in one guild."""

    blocked_terms: tuple[str, ...]
    allowed_channel_ids: frozenset[int]  # empty = every channel
    user_banned: bool


class ModerationRepo:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock

    # --- blocked terms ---------------------------------------------------------------------
    async def add_blocked_term(self, guild_id: int, term: str, added_by: int | None = None) -> bool:
        """True if the term is new for this guild."""
        values = {"term": term, "added_by": added_by, "created_at": self._clock()}
        return await config_versions.add_guild_row(self._db, blocked_terms, guild_id, values)

    async def remove_blocked_term(self, guild_id: int, term: str) -> bool:
        return await config_versions.remove_guild_row(self._db, blocked_terms, guild_id, term=term)

    async def blocked_terms(self, guild_id: int) -> list[str]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(blocked_terms.c.term)
                .where(blocked_terms.c.guild_id == guild_id)
                .order_by(blocked_terms.c.term)
            )
            return list(rows.scalars())

    # --- channel allow-list ----------------------------------------------------------------
    async def allow_channel(self, guild_id: int, channel_id: int) -> bool:
        return await config_versions.add_guild_row(
            self._db, allowed_channels, guild_id, {"channel_id": channel_id}
        )

    async def disallow_channel(self, guild_id: int, channel_id: int) -> bool:
        return await config_versions.remove_guild_row(
            self._db, allowed_channels, guild_id, channel_id=channel_id
        )

    async def allowed_channels(self, guild_id: int) -> frozenset[int]:
        """Channels where /imagine works; empty means everywhere."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(allowed_channels.c.channel_id).where(
                    allowed_channels.c.guild_id == guild_id
                )
            )
            return frozenset(rows.scalars())

    # --- bans ------------------------------------------------------------------------------
    async def ban(
        self, guild_id: int, user_id: int, *, reason: str | None = None,
        banned_by: int | None = None,
    ) -> None:
        """Ban (or re-ban with a new reason) a member from generating in this guild."""
        values = {"reason": reason, "banned_by": banned_by, "created_at": self._clock()}
        async with self._db.write() as conn:
            await config_versions.bump(self._db, conn, guild_id)
            await self._db.upsert(
                conn, banned_users, {"guild_id": guild_id, "user_id": user_id}, values
            )

    async def unban(self, guild_id: int, user_id: int) -> bool:
        return await config_versions.remove_guild_row(
            self._db, banned_users, guild_id, user_id=user_id
        )

    async def is_banned(self, guild_id: int, user_id: int) -> bool:
        return (await self.rules(guild_id, user_id)).user_banned

    async def bans(self, guild_id: int) -> list[Ban]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(banned_users)
                .where(banned_users.c.guild_id == guild_id)
                .order_by(banned_users.c.created_at)
            )
            return [
                Ban(row["user_id"], row["reason"], row["banned_by"], row["created_at"])
                for row in rows.mappings()
            ]

    async def rules(self, guild_id: int, user_id: int) -> ModerationRules:
        async with self._db.read() as conn:
            terms = await conn.execute(
                select(blocked_terms.c.term).where(blocked_terms.c.guild_id == guild_id)
            )
            channels = await conn.execute(
                select(allowed_channels.c.channel_id).where(
                    allowed_channels.c.guild_id == guild_id
                )
            )
            banned = await conn.execute(
                select(banned_users.c.user_id).where(
                    banned_users.c.guild_id == guild_id, banned_users.c.user_id == user_id
                )
            )
            return ModerationRules(
                blocked_terms=tuple(terms.scalars()),
                allowed_channel_ids=frozenset(channels.scalars()),
                user_banned=banned.first() is not None,
            )
