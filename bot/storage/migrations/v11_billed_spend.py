"""V11: spend counts what Novita bills, apart from what counts against a member.

`usage_ledger.billed`: Novita has (or may have) billed the job — its submit was sent, whatever
happened after — so it counts in spend even when the member is not charged for it (a timeout,
a failed download or upload, a submit in doubt after a restart). `usage_daily.spent_microusd`:
the spend of each rolled-up group, since a group's status alone no longer says it.

Rows written by older releases are backfilled by the rule they were counted by: succeeded and
cancelled jobs are billed; failed and refunded ones were not counted and stay so.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

VERSION = 11
NAME = "billed spend"


async def upgrade(conn: AsyncConnection) -> None:
    # The same statements on SQLite and PostgreSQL.
    await conn.exec_driver_sql(
        "ALTER TABLE usage_ledger ADD COLUMN billed BOOLEAN NOT NULL DEFAULT FALSE")
    await conn.exec_driver_sql(
        "UPDATE usage_ledger SET billed = TRUE WHERE status IN ('succeeded', 'cancelled')")
    await conn.exec_driver_sql(
        "ALTER TABLE usage_daily ADD COLUMN spent_microusd BIGINT NOT NULL DEFAULT 0")
    await conn.exec_driver_sql(
        "UPDATE usage_daily SET spent_microusd = cost_microusd "
        "WHERE status IN ('reserved', 'submitted', 'succeeded', 'cancelled')")
