"""V7: the kind of each journaled job (`generate`, `edit`, `remix`), so a restart resumes an
edit on the edit duration model and never tries to resubmit one whose input image is gone.

Additive only: one column with a default, so rows written by older releases read as generations.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

VERSION = 7
NAME = "job kind in the journal"


async def upgrade(conn: AsyncConnection) -> None:
    # The same statement on SQLite and PostgreSQL.
    await conn.exec_driver_sql(
        "ALTER TABLE job_journal ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'generate'"
    )
