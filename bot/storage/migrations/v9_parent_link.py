"""V9: where an Edit or Remix came from (the parent result's jump link), so a job taken back
after a restart still shows "Edit of" / "Remix of" on its result.

Additive only: one nullable column; rows written by older releases simply show no link.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

VERSION = 9
NAME = "parent link in the journal"


async def upgrade(conn: AsyncConnection) -> None:
    # The same statement on SQLite and PostgreSQL.
    await conn.exec_driver_sql("ALTER TABLE job_journal ADD COLUMN parent_url VARCHAR(300)")
