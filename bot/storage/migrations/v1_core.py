"""V1: guild settings, role overrides, moderation lists and the usage ledger."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.columns import AutoId, UtcTimestamp

VERSION = 1
NAME = "guild settings, roles, moderation, usage ledger"

# Frozen as of V1: later versions change these tables with their own migrations, never here.
metadata = MetaData()

Table(
    "guild_settings", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("nsfw_policy", String(16), nullable=False, server_default="block"),
    # NULL = use the bot-wide default from the settings.
    Column("user_generations_per_window", Integer),
    Column("user_window_minutes", Integer),
    Column("user_max_concurrent_jobs", Integer),
    Column("user_daily_quota", Integer),
    Column("guild_max_concurrent_jobs", Integer),
    Column("guild_daily_cap", Integer),
    Column("guild_daily_spend_cap_usd", Float),
    Column("updated_at", UtcTimestamp, nullable=False),
)

Table(
    "role_overrides", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role_id", BigInteger, primary_key=True, autoincrement=False),
    # NULL = this role does not change that limit.
    Column("generations_per_window", Integer),
    Column("max_concurrent_jobs", Integer),
    Column("daily_quota", Integer),
    Column("updated_at", UtcTimestamp, nullable=False),
)

Table(
    "exempt_roles", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role_id", BigInteger, primary_key=True, autoincrement=False),
)

Table(
    "blocked_terms", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("term", String(100), primary_key=True),
    Column("added_by", BigInteger),
    Column("created_at", UtcTimestamp, nullable=False),
)

Table(
    "allowed_channels", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("channel_id", BigInteger, primary_key=True, autoincrement=False),
)

Table(
    "banned_users", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("reason", String(200)),
    Column("banned_by", BigInteger),
    Column("created_at", UtcTimestamp, nullable=False),
)

usage_ledger = Table(
    "usage_ledger", metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("guild_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("size", String(16), nullable=False),
    Column("images", Integer, nullable=False, server_default="1"),  # cost units
    Column("cost_microusd", BigInteger, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),
    Column("waived", Boolean, nullable=False, server_default=false()),
    Column("reroll_of", BigInteger),
    Column("task_id", String(128)),
    Column("error", String(200)),
    Column("timings", Text),  # JSON object of phase name -> seconds
    Column("created_at", UtcTimestamp, nullable=False),
    Column("submitted_at", UtcTimestamp),
    Column("finished_at", UtcTimestamp),
)
Index("ix_usage_ledger_user", usage_ledger.c.guild_id, usage_ledger.c.user_id,
      usage_ledger.c.created_at)
Index("ix_usage_ledger_guild", usage_ledger.c.guild_id, usage_ledger.c.created_at)
Index("ix_usage_ledger_created", usage_ledger.c.created_at)


async def upgrade(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)
