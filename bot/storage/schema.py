"""The tables as the queries see them: the shape after the newest migration.

Migrations (`bot/storage/migrations/`) create and change the real tables; this module describes
the result for SQLAlchemy Core queries. A test migrates an empty database and checks the two
agree, so a migration without a matching change here (or the reverse) fails CI.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from bot.storage.columns import AutoId, UtcTimestamp

metadata = MetaData()

guild_settings = Table(
    "guild_settings", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("nsfw_policy", String(16), nullable=False, server_default="block"),
    Column("user_generations_per_window", Integer),
    Column("user_window_minutes", Integer),
    Column("user_max_concurrent_jobs", Integer),
    Column("user_daily_quota", Integer),
    Column("guild_max_concurrent_jobs", Integer),
    Column("guild_daily_cap", Integer),
    Column("guild_daily_spend_cap_usd", Float),
    Column("updated_at", UtcTimestamp, nullable=False),
)

role_overrides = Table(
    "role_overrides", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role_id", BigInteger, primary_key=True, autoincrement=False),
    Column("generations_per_window", Integer),
    Column("max_concurrent_jobs", Integer),
    Column("daily_quota", Integer),
    Column("updated_at", UtcTimestamp, nullable=False),
)

exempt_roles = Table(
    "exempt_roles", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role_id", BigInteger, primary_key=True, autoincrement=False),
)

blocked_terms = Table(
    "blocked_terms", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("term", String(100), primary_key=True),
    Column("added_by", BigInteger),
    Column("created_at", UtcTimestamp, nullable=False),
)

allowed_channels = Table(
    "allowed_channels", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("channel_id", BigInteger, primary_key=True, autoincrement=False),
)

banned_users = Table(
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
    Column("images", Integer, nullable=False, server_default="1"),
    Column("cost_microusd", BigInteger, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),
    Column("waived", Boolean, nullable=False, server_default=false()),
    Column("reroll_of", BigInteger),
    Column("task_id", String(128)),
    Column("error", String(200)),
    Column("timings", Text),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("submitted_at", UtcTimestamp),
    Column("finished_at", UtcTimestamp),
    Column("result_channel_id", BigInteger),  # where the image was posted (V4)
    Column("result_message_id", BigInteger),  # NULL: no image, or the message was deleted
    # Novita has (or may have) billed it: counts in spend whatever its status (V11).
    Column("billed", Boolean, nullable=False, server_default=false()),
)

durations = Table(
    "durations", metadata,
    Column("name", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
)

job_journal = Table(
    "job_journal", metadata,
    Column("job_id", BigInteger, primary_key=True, autoincrement=False),
    Column("owner_id", String(64), nullable=False),
    Column("shard_id", Integer, nullable=False),
    Column("application_id", BigInteger),
    Column("interaction_id", BigInteger),
    Column("interaction_token", Text),
    Column("interaction_at", UtcTimestamp),
    Column("guild_id", BigInteger),
    Column("channel_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("user_name", String(100), nullable=False, server_default=""),
    Column("channel_is_nsfw", Boolean, nullable=False, server_default=false()),
    Column("filesize_limit", BigInteger),
    Column("message_id", BigInteger),
    Column("task_id", String(128)),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    Column("kind", String(16), nullable=False, server_default="generate"),  # V7
    Column("parent_url", String(300)),  # V9
)

shard_owners = Table(
    "shard_owners", metadata,
    Column("shard_id", Integer, primary_key=True, autoincrement=False),
    Column("owner_id", String(64), nullable=False),
    Column("heartbeat_at", UtcTimestamp, nullable=False),
)

usage_daily = Table(
    "usage_daily", metadata,
    Column("day", UtcTimestamp, primary_key=True),
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(16), primary_key=True),
    Column("waived", Boolean, primary_key=True),
    Column("jobs", Integer, nullable=False),
    Column("images", Integer, nullable=False),
    Column("cost_microusd", BigInteger, nullable=False),
    Column("spent_microusd", BigInteger, nullable=False, server_default="0"),  # V11
)

bot_state = Table(
    "bot_state", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
)

config_versions = Table(
    "config_versions", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

pending_deliveries = Table(
    "pending_deliveries", metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("embed_json", Text, nullable=False),
    Column("image", LargeBinary, nullable=True),
    Column("filename", String(200), nullable=True),
    Column("spoiler", Boolean, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Index("ix_pending_deliveries_user", "user_id"),
)
