"""V4 (crash safety): the job journal keyed by the ledger's job id, shard owners, daily rollups.

* `job_journal` is rebuilt: one row per admitted, unfinished job, keyed by `usage_ledger.id`,
  with what a restarted process needs to take the job back (owner, shard, where to post, the
  interaction to edit, the Novita task once submitted). The V2 table was never written to.
* `shard_owners`: which process runs each Discord shard, with a heartbeat.
* `usage_daily`: ledger rows past the retention period, rolled up per day, guild, member and
  status (what usage, spend and history still read after the rows themselves are pruned).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.columns import UtcTimestamp

VERSION = 5
NAME = "job journal by ledger job id, shard owners, daily usage rollups"

metadata = MetaData()

job_journal = Table(
    "job_journal", metadata,
    Column("job_id", BigInteger, primary_key=True, autoincrement=False),  # usage_ledger.id
    Column("owner_id", String(64), nullable=False),  # the process that runs the job
    Column("shard_id", Integer, nullable=False),
    Column("application_id", BigInteger),
    Column("interaction_id", BigInteger),
    # A secret: kept only while the job runs (the row is deleted when it ends).
    Column("interaction_token", Text),
    Column("interaction_at", UtcTimestamp),
    Column("guild_id", BigInteger),  # NULL: a direct message
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
)
Index("ix_job_journal_shard", job_journal.c.shard_id)

Table(
    "shard_owners", metadata,
    Column("shard_id", Integer, primary_key=True, autoincrement=False),
    Column("owner_id", String(64), nullable=False),
    Column("heartbeat_at", UtcTimestamp, nullable=False),
)

Table(
    "usage_daily", metadata,
    Column("day", UtcTimestamp, primary_key=True),  # 00:00 UTC of the day
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(16), primary_key=True),
    Column("waived", Boolean, primary_key=True),
    Column("jobs", Integer, nullable=False),
    Column("images", Integer, nullable=False),
    Column("cost_microusd", BigInteger, nullable=False),
)


async def upgrade(conn: AsyncConnection) -> None:
    await conn.execute(text("DROP TABLE IF EXISTS job_journal"))
    await conn.run_sync(metadata.create_all)
