"""The usage ledger on both backends: a job's life, refunds, counted windows, history pages."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from bot.jobs.model import JobStatus
from bot.storage import UsageLedger
from bot.storage.database import Database
from bot.storage.repositories.ledger import UsageWindow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from fakes.clock import ManualUtcClock


async def insert_job(
    ledger: UsageLedger,
    conn: AsyncConnection,
    created_at: dt.datetime,
    *,
    user: int = 7,
    guild: int = 1,
    cost: int = 20_000,
) -> int:
    return await ledger.insert(
        conn,
        guild_id=guild,
        channel_id=2,
        user_id=user,
        prompt="a red fox",
        size="1024*1024",
        cost_microusd=cost,
        created_at=created_at,
    )


async def test_ledger_life_cycle_and_refunds(database: Database, utc_clock: ManualUtcClock) -> None:
    ledger = UsageLedger(database, utc_clock)
    async with database.write() as conn:
        ok, failed, early = [await insert_job(ledger, conn, utc_clock()) for _ in range(3)]
    assert await ledger.mark_submitted(ok, "task-1")
    assert not await ledger.mark_submitted(ok, "task-1")  # only once
    utc_clock.advance(seconds=12.5)
    assert await ledger.finish(ok, JobStatus.SUCCEEDED, timings={"generate": 11.0})
    assert not await ledger.finish(ok, JobStatus.FAILED)  # closed rows stay closed
    await ledger.mark_submitted(failed, "task-2")
    assert await ledger.finish(failed, JobStatus.FAILED, error="upstream 500")
    assert await ledger.finish(early, JobStatus.CANCELLED)  # never submitted: refunded

    entry = await ledger.get(ok)
    assert entry is not None
    assert (entry.status, entry.task_id, entry.counted) == (JobStatus.SUCCEEDED, "task-1", True)
    assert entry.timings == {"generate": 11.0}
    assert entry.finished_at == utc_clock.now and entry.cost_usd == pytest.approx(0.02)
    assert (await ledger.get(failed)).status is JobStatus.FAILED  # type: ignore[union-attr]
    assert (await ledger.get(early)).status is JobStatus.REFUNDED  # type: ignore[union-attr]
    assert await ledger.get(9999) is None
    with pytest.raises(ValueError):
        await ledger.finish(ok, JobStatus.RESERVED)

    async with database.read() as conn:
        counts = await ledger.counts(conn, 1, 7, _bounds(utc_clock.now))
    assert counts.user_today == 1 and counts.user_active == 0
    assert counts.guild_spent_today_microusd == 20_000 == counts.bot_spent_today_microusd


async def test_cancel_after_submission_still_counts(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    async with database.write() as conn:
        job_id = await insert_job(ledger, conn, utc_clock())
    await ledger.mark_submitted(job_id, "t")
    await ledger.finish(job_id, JobStatus.CANCELLED)
    assert (await ledger.get(job_id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    async with database.read() as conn:
        assert (await ledger.counts(conn, 1, 7, _bounds(utc_clock.now))).user_today == 1


def _bounds(now: dt.datetime) -> UsageWindow:
    return UsageWindow(
        window_start=now - dt.timedelta(minutes=10),
        day_start=now.replace(hour=0, minute=0, second=0, microsecond=0),
        active_since=now - dt.timedelta(minutes=20),
    )


async def test_ledger_counts_windows_days_and_stale_jobs(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    now = utc_clock.now  # 12:00 UTC
    times = [
        now - dt.timedelta(hours=13),  # yesterday: not today, not active
        now - dt.timedelta(hours=2),  # today, stale: unfinished but presumed lost
        now - dt.timedelta(minutes=9),  # in the window, active
        now - dt.timedelta(minutes=1),  # in the window, active
    ]
    async with database.write() as conn:
        for at in times:
            await insert_job(ledger, conn, at)
        await insert_job(ledger, conn, now, user=8)  # another member, same guild
        await insert_job(ledger, conn, now, guild=3)  # same member, other guild
    async with database.read() as conn:
        counts = await ledger.counts(conn, 1, 7, _bounds(now))
    assert counts.window_starts == tuple(times[2:])
    assert (counts.user_today, counts.user_active) == (3, 2)
    assert (counts.guild_today, counts.guild_active) == (4, 3)
    assert counts.guild_spent_today_microusd == 4 * 20_000
    assert counts.bot_spent_today_microusd == 5 * 20_000

    assert await ledger.waive(1, 7, now - dt.timedelta(hours=3)) == 3
    async with database.read() as conn:
        waived = await ledger.counts(conn, 1, 7, _bounds(now))
    assert (waived.user_today, waived.window_starts, waived.guild_today) == (0, (), 1)
    assert waived.guild_spent_today_microusd == 4 * 20_000  # money was still spent


async def test_history_pages_and_summary(database: Database, utc_clock: ManualUtcClock) -> None:
    ledger = UsageLedger(database, utc_clock)
    job_ids: list[int] = []
    async with database.write() as conn:
        for i in range(7):
            job_ids.append(await insert_job(ledger, conn, utc_clock(), user=7 if i % 2 else 8))
            utc_clock.advance(minutes=1)
    await ledger.refund(job_ids[0])
    await ledger.finish(job_ids[1], JobStatus.SUCCEEDED)

    page = await ledger.history(1, limit=3)
    assert [e.job_id for e in page.entries] == job_ids[::-1][:3]
    assert page.total == 7 and page.has_more
    last = await ledger.history(1, offset=6, limit=3)
    assert [e.job_id for e in last.entries] == [job_ids[0]] and not last.has_more
    mine = await ledger.history(1, user_id=7)
    assert [e.user_id for e in mine.entries] == [7, 7, 7] and mine.total == 3
    assert (await ledger.history(99)).total == 0

    start = utc_clock.now - dt.timedelta(days=1)
    summary = await ledger.summary(start, guild_id=1)
    assert (summary.jobs, summary.succeeded, summary.images, summary.users) == (7, 1, 6, 2)
    assert summary.by_status == {"refunded": 1, "succeeded": 1, "reserved": 5}
    assert summary.spent_usd == pytest.approx(0.12)
    assert await ledger.spent_microusd(start) == 120_000
    assert await ledger.spent_microusd(start, guild_id=2) == 0


async def test_blank_prompt_keeps_the_row(database: Database, utc_clock: ManualUtcClock) -> None:
    ledger = UsageLedger(database, utc_clock)
    async with database.write() as conn:
        job_id = await ledger.insert(conn, guild_id=5, channel_id=6, user_id=1, prompt="private",
                                     size="512*512", created_at=utc_clock.now)
    assert await ledger.blank_prompt(job_id)
    entry = await ledger.get(job_id)
    assert entry is not None and entry.prompt == "" and entry.counted


async def test_billed_jobs_count_in_spend_whether_or_not_they_count_for_the_member(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    """Spend is what Novita bills; the member's count forgives what was not their doing."""
    ledger = UsageLedger(database, utc_clock)
    async with database.write() as conn:
        (ok, in_flight_cancel, early_cancel, lost_after_accept, task_failed,
         in_doubt, waived) = [await insert_job(ledger, conn, utc_clock()) for _ in range(7)]
    await ledger.mark_submitted(ok, "t1")
    assert await ledger.finish(ok, JobStatus.SUCCEEDED)
    # Cancelled while the submit was in flight: no task id yet, but it was sent.
    assert await ledger.finish(in_flight_cancel, JobStatus.CANCELLED, billed=True)
    assert await ledger.finish(early_cancel, JobStatus.CANCELLED)  # never sent: refunded
    await ledger.mark_submitted(lost_after_accept, "t2")
    assert await ledger.finish(lost_after_accept, JobStatus.FAILED, billed=True)
    await ledger.mark_submitted(task_failed, "t3")
    assert await ledger.finish(task_failed, JobStatus.FAILED)  # Novita said FAILED: unbilled
    assert await ledger.finish(in_doubt, JobStatus.REFUNDED, billed=True)
    await ledger.mark_submitted(waived, "t4")
    assert await ledger.finish(waived, JobStatus.SUCCEEDED)
    assert await ledger.waive(1, 7, utc_clock() - dt.timedelta(minutes=1)) == 7

    rows = {job: await ledger.get(job) for job in (ok, in_flight_cancel, early_cancel,
                                                   lost_after_accept, task_failed, in_doubt)}
    assert {job: (str(e.status), e.billed, e.in_spend) for job, e in rows.items() if e} == {
        ok: ("succeeded", True, True),
        in_flight_cancel: ("cancelled", True, True),
        early_cancel: ("refunded", False, False),
        lost_after_accept: ("failed", True, True),
        task_failed: ("failed", False, False),
        in_doubt: ("refunded", True, True),
    }
    five_in_spend = 5 * 20_000  # ok, in-flight cancel, lost, in doubt, waived
    async with database.read() as conn:
        counts = await ledger.counts(conn, 1, 7, _bounds(utc_clock.now))
        assert await ledger.bot_spent(conn, utc_clock() - dt.timedelta(hours=1)) == five_in_spend
    assert counts.user_today == 0  # all waived by the reset
    assert counts.guild_spent_today_microusd == five_in_spend == counts.bot_spent_today_microusd
    since = utc_clock() - dt.timedelta(hours=1)
    assert await ledger.spent_microusd(since, 1) == five_in_spend
    summary = await ledger.summary(since, 1)
    assert summary.spent_microusd == five_in_spend
    assert summary.images == 3  # counted images: succeeded twice, cancelled once
    day = utc_clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    (today,) = await ledger.daily_usage(day, 1, 1)
    assert today.spent_microusd == five_in_spend


async def test_before_the_waive_a_cancel_in_flight_counts_for_the_member(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    async with database.write() as conn:
        sent, forgiven = [await insert_job(ledger, conn, utc_clock()) for _ in range(2)]
    await ledger.finish(sent, JobStatus.CANCELLED, billed=True)
    await ledger.finish(forgiven, JobStatus.FAILED, billed=True)
    async with database.read() as conn:
        counts = await ledger.counts(conn, 1, 7, _bounds(utc_clock.now))
    assert counts.user_today == 1  # the cancel counts; the forgiven failure does not
    assert counts.guild_spent_today_microusd == 40_000  # both are in spend
