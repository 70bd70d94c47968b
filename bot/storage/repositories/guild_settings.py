"""Per-guild settings: limit overrides and the NSFW policy."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.clock import WallClock, utc_now
from bot.storage.database import Database
from bot.storage.repositories import config_versions
from bot.storage.schema import guild_settings


class NsfwPolicy(enum.StrEnum):
    BLOCK = "block"  # show a notice instead of the image (the default)
    SPOILER = "spoiler"  # post the image behind a spoiler


@dataclass(frozen=True)
class GuildConfig:
    """One guild's settings. Every limit left as None follows the bot-wide default."""

    guild_id: int
    nsfw_policy: NsfwPolicy = NsfwPolicy.BLOCK
    user_generations_per_window: int | None = None
    user_window_minutes: int | None = None
    user_max_concurrent_jobs: int | None = None
    user_daily_quota: int | None = None
    guild_max_concurrent_jobs: int | None = None
    guild_daily_cap: int | None = None
    guild_daily_spend_cap_usd: float | None = None


class GuildSettingsRepo:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def get(self, guild_id: int) -> GuildConfig:
        """The guild's settings (all defaults if it never changed any)."""
        async with self._db.read() as conn:
            return await read_config(conn, guild_id)

    async def save(self, config: GuildConfig) -> None:
        """Store the whole record; change one field with `dataclasses.replace(config, …)`."""
        values = asdict(config)
        guild_id = values.pop("guild_id")
        values["nsfw_policy"] = str(config.nsfw_policy)
        values["updated_at"] = self._clock()
        async with self._db.write() as conn:
            await config_versions.bump(self._db, conn, guild_id)
            await self._db.upsert(conn, guild_settings, {"guild_id": guild_id}, values)

    async def reset(self, guild_id: int) -> None:
        """Forget every override: the guild follows the defaults again."""
        async with self._db.write() as conn:
            await config_versions.bump(self._db, conn, guild_id)
            await conn.execute(delete(guild_settings).where(guild_settings.c.guild_id == guild_id))


async def read_config(conn: AsyncConnection, guild_id: int) -> GuildConfig:
    """The guild's settings, read in the caller's transaction."""
    row = (
        await conn.execute(select(guild_settings).where(guild_settings.c.guild_id == guild_id))
    ).mappings().first()
    if row is None:
        return GuildConfig(guild_id)
    values = {k: v for k, v in row.items() if k != "updated_at"}
    values["nsfw_policy"] = _policy(values["nsfw_policy"])
    return GuildConfig(**values)


def _policy(raw: str) -> NsfwPolicy:
    try:
        return NsfwPolicy(raw)
    except ValueError:
        return NsfwPolicy.BLOCK  # unknown values (e.g. from a newer release) fail safe
