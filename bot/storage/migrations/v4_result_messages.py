"""V4: where each job's result was posted (channel and message), for members' own history.

Additive only: two nullable columns on `usage_ledger` (NULL for older rows, for jobs without an
image, and once the message is deleted) and an index to find a row by its message when Discord
reports a deletion.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex

VERSION = 4
NAME = "result messages"

metadata = MetaData()

# Only the columns this migration touches: enough to name them in DDL.
usage_ledger = Table(
    "usage_ledger", metadata,
    Column("result_channel_id", BigInteger),
    Column("result_message_id", BigInteger),
)
by_result_message = Index("ix_usage_ledger_result_message", usage_ledger.c.result_message_id)


async def upgrade(conn: AsyncConnection) -> None:
    for column in ("result_channel_id", "result_message_id"):
        # The same statement on SQLite and PostgreSQL; BIGINT is a 64-bit integer on both.
        await conn.exec_driver_sql(f"ALTER TABLE usage_ledger ADD COLUMN {column} BIGINT")
    await conn.execute(CreateIndex(by_result_message))
