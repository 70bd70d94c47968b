"""V7: results that could reach nobody yet (user-installed app, token expired, DMs closed), kept
until the member's next command shows them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.columns import AutoId, UtcTimestamp

VERSION = 8
NAME = "pending deliveries of the user-installable app"

metadata = MetaData()

Table(
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


async def upgrade(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)
