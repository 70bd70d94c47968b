"""V3: small key-value bot state that must survive restarts (e.g. the command-tree hash)."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, Text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.columns import UtcTimestamp

VERSION = 3
NAME = "bot state"

metadata = MetaData()

Table(
    "bot_state", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
)


async def upgrade(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)
