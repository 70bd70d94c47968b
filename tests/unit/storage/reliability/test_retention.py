"""Retention roll-ups on both backends: old rows become daily totals that usage still reads."""

from __future__ import annotations

import datetime as dt

from bot.jobs.model import JobStatus
from bot.storage.database import Database
from bot.storage.reliability.retention import Retention
from bot.storage.repositories.ledger import UsageLedger
from fakes.clock import ManualUtcClock


async def test_retention_rolls_old_rows_into_daily_totals_that_usage_still_reads(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    start = utc_clock.now - dt.timedelta(days=120)
    ids = []
    async with database.write() as conn:
        for days_ago, user in ((120, 1), (120, 2), (100, 1), (10, 1)):
            ids.append(await ledger.insert(
                conn, guild_id=5, channel_id=6, user_id=user, prompt=f"secret {days_ago}",
                size="512*512", created_at=utc_clock.now - dt.timedelta(days=days_ago),
                cost_microusd=20_000,
            ))
    for job_id in ids[:-1]:
        await ledger.finish(job_id, JobStatus.SUCCEEDED)
    await ledger.finish(ids[-1], JobStatus.FAILED)
    before = await ledger.summary(start - dt.timedelta(days=1), 5)
    top_before = await ledger.top_users(start - dt.timedelta(days=1), 5)
    spent_before = await ledger.spent_microusd(start - dt.timedelta(days=1), 5)

    retention = Retention(database, 90, utc_clock)
    assert await retention.roll_up() == 3
    assert await retention.roll_up() == 0  # nothing counted twice
    page = await ledger.history(5)
    assert [e.prompt for e in page.entries] == ["secret 10"]  # old prompts are gone

    after = await ledger.summary(start - dt.timedelta(days=1), 5)
    assert (after.jobs, after.succeeded, after.failed, after.images, after.users,
            after.spent_microusd) == (before.jobs, before.succeeded, before.failed,
                                      before.images, before.users, before.spent_microusd)
    assert after.by_status == before.by_status
    assert await ledger.top_users(start - dt.timedelta(days=1), 5) == top_before
    assert await ledger.spent_microusd(start - dt.timedelta(days=1), 5) == spent_before
    # Windows inside the retention period are unchanged by the roll-up.
    recent = await ledger.summary(utc_clock.now - dt.timedelta(days=30), 5)
    assert (recent.jobs, recent.failed) == (1, 1)


async def test_retention_zero_keeps_everything(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    assert await Retention(database, 0, utc_clock).roll_up() == 0


async def test_rolled_up_spend_keeps_billed_failures_and_drops_unbilled_ones(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    old = utc_clock.now - dt.timedelta(days=120)
    async with database.write() as conn:
        ids = [await ledger.insert(
            conn, guild_id=5, channel_id=6, user_id=1, prompt="p", size="512*512",
            created_at=old, cost_microusd=20_000,
        ) for _ in range(3)]
    await ledger.finish(ids[0], JobStatus.FAILED, billed=True)  # accepted, then lost
    await ledger.finish(ids[1], JobStatus.FAILED)  # Novita reported FAILED
    await ledger.finish(ids[2], JobStatus.SUCCEEDED)
    since = old - dt.timedelta(days=1)
    assert await ledger.spent_microusd(since, 5) == 40_000
    assert await Retention(database, 90, utc_clock).roll_up() == 3
    assert await ledger.spent_microusd(since, 5) == 40_000  # same after the roll-up
    assert (await ledger.summary(since, 5)).spent_microusd == 40_000
