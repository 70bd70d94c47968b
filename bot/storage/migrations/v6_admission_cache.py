"""V4: a per-guild config version, bumped by every admin change, so admission can cache guild
settings, role limits and moderation lists and still see a change made by another process.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection

VERSION = 6
NAME = "guild config versions for the admission cache"

metadata = MetaData()

Table(
    "config_versions", metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)


async def upgrade(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)
