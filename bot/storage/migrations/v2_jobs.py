"""V2: learned job durations and the job journal for restart-safe jobs."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.columns import UtcTimestamp

VERSION = 2
NAME = "durations, job journal"

metadata = MetaData()

Table(
    "durations", metadata,
    Column("name", String(64), primary_key=True),
    Column("data", Text, nullable=False),  # JSON, owned by bot.jobs.polling.durations
    Column("updated_at", UtcTimestamp, nullable=False),
)

job_journal = Table(
    "job_journal", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("ticket_id", BigInteger),  # usage_ledger.id
    Column("guild_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("interaction_id", BigInteger),
    Column("message_id", BigInteger),
    Column("prompt", Text, nullable=False),
    Column("size", String(16), nullable=False),
    Column("task_id", String(128)),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
)
Index("ix_job_journal_state", job_journal.c.state)


async def upgrade(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)
