"""Retention: ledger rows older than `RETENTION_DAYS` become daily totals; their prompts go.

Once a day the ledger rows (finished ones only) created before 00:00 UTC `days` days ago are
added into `usage_daily` (per day, guild, member, status and waived flag) and deleted, in one
transaction per batch, so nothing is counted twice or lost. Usage summaries, top members and
spend read the totals beside the remaining rows; only the per-job history (and its prompts)
stops at the retention horizon. Prompts of images their owner deleted are blanked at once
(`UsageLedger.blank_prompt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import defaultdict
from typing import Final

from sqlalchemy import delete, select

from bot.clock import WallClock, utc_now
from bot.storage.database import Database
from bot.storage.reliability.outage import OutageLog, is_database_unavailable
from bot.storage.repositories.ledger import ACTIVE
from bot.storage.repositories.ledger_rows import in_spend
from bot.storage.schema import usage_daily, usage_ledger

log = logging.getLogger(__name__)

DAY: Final = dt.timedelta(days=1)
BATCH: Final = 5000
RUN_EVERY: Final = 24 * 3600.0


def start_of_day(moment: dt.datetime) -> dt.datetime:
    utc = moment.astimezone(dt.UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


class Retention:
    def __init__(self, db: Database, days: int, clock: WallClock = utc_now) -> None:
        self._db = db
        self.days = days
        self._clock = clock

    def horizon(self) -> dt.datetime | None:
        """Rows created before this are rolled up (None: keep everything)."""
        if self.days <= 0:
            return None
        return start_of_day(self._clock()) - self.days * DAY

    async def roll_up(self) -> int:
        """Fold old finished rows into daily totals and delete them; returns how many."""
        horizon = self.horizon()
        if horizon is None:
            return 0
        total = 0
        while True:
            folded = await self._roll_up_batch(horizon)
            total += folded
            if folded < BATCH:
                break
        if total:
            log.info("retention: rolled %d ledger rows older than %s into daily totals", total,
                     horizon.date().isoformat())
        return total

    async def _roll_up_batch(self, horizon: dt.datetime) -> int:
        t = usage_ledger
        async with self._db.write(["retention"]) as conn:
            rows = (await conn.execute(
                select(t.c.id, t.c.created_at, t.c.guild_id, t.c.user_id, t.c.status, t.c.waived,
                       t.c.images, t.c.cost_microusd, in_spend(t).label("in_spend"))
                .where(t.c.created_at < horizon,
                       t.c.status.not_in(sorted(str(s) for s in ACTIVE)))
                .order_by(t.c.id)
                .limit(BATCH)
            )).all()
            if not rows:
                return 0
            totals: dict[tuple[dt.datetime, int, int, str, bool], list[int]] = defaultdict(
                lambda: [0, 0, 0, 0])
            for row in rows:
                key = (start_of_day(row.created_at), int(row.guild_id), int(row.user_id),
                       str(row.status), bool(row.waived))
                bucket = totals[key]
                bucket[0] += 1
                bucket[1] += int(row.images)
                bucket[2] += int(row.cost_microusd)
                bucket[3] += int(row.cost_microusd) if row.in_spend else 0
            for (day, guild_id, user_id, status, waived), (jobs, images, cost, spent) in (
                totals.items()
            ):
                stmt = self._db.insert(usage_daily).values(
                    day=day, guild_id=guild_id, user_id=user_id, status=status, waived=waived,
                    jobs=jobs, images=images, cost_microusd=cost, spent_microusd=spent,
                )
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=["day", "guild_id", "user_id", "status", "waived"],
                    set_={
                        "jobs": usage_daily.c.jobs + stmt.excluded.jobs,
                        "images": usage_daily.c.images + stmt.excluded.images,
                        "cost_microusd": usage_daily.c.cost_microusd
                        + stmt.excluded.cost_microusd,
                        "spent_microusd": usage_daily.c.spent_microusd
                        + stmt.excluded.spent_microusd,
                    },
                ))
            await conn.execute(delete(t).where(t.c.id.in_([row.id for row in rows])))
            return len(rows)


class RetentionTask:
    """Runs `Retention.roll_up` once a day in the background (a failure waits for the next)."""

    def __init__(
        self, db: Database, days: int, outage: OutageLog, *, every: float = RUN_EVERY
    ) -> None:
        self.retention = Retention(db, days)
        self.outage = outage
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.retention.days > 0:
            self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.retention.roll_up()
            except Exception as error:
                if is_database_unavailable(error):
                    self.outage.failed(error, "rolling up old ledger rows")
                else:
                    log.exception("retention: could not roll up old ledger rows")
            await asyncio.sleep(self.every)
