"""V10: the journal speaks the job's one vocabulary (`bot.jobs.model.JobStage`).

A job admitted but not yet sent to Novita was journaled as `queued`, a word that also meant
"at Novita, waiting for a worker" in progress updates; it is now `waiting`. `submitting` and
`submitted` keep their names. Rows in flight across the upgrade are renamed in place.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

VERSION = 10
NAME = "journal stages"


async def upgrade(conn: AsyncConnection) -> None:
    # The same statement on SQLite and PostgreSQL.
    await conn.exec_driver_sql("UPDATE job_journal SET state = 'waiting' WHERE state = 'queued'")
