"""The write outbox (ordered, retried through an outage, one log line) and retention roll-ups."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest

from bot.jobs.model import JobStatus
from bot.storage.database import Database
from bot.storage.reliability.outage import OutageLog
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.reliability.retention import Retention
from bot.storage.repositories.ledger import UsageLedger
from fakes.clock import ManualUtcClock


async def test_outbox_retries_in_order_through_an_outage_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    landed: list[str] = []
    failures = {"first": 3}

    def write(name: str) -> object:
        async def run() -> None:
            if failures.get(name, 0) > 0:
                failures[name] -= 1
                raise ConnectionRefusedError("database down")
            landed.append(name)
        return run

    outbox = WriteOutbox(OutageLog(), initial_backoff=0.001, max_backoff=0.002)
    first = outbox.put("first", write("first"))  # type: ignore[arg-type]
    second = outbox.put("second", write("second"))  # type: ignore[arg-type]
    assert await asyncio.wait_for(second, 2) and first.result()
    assert landed == ["first", "second"]  # in order, though the first needed retries
    outage = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outage) == 1
    assert "reachable again" in caplog.text
    assert await outbox.close() == 0


async def test_outbox_drops_a_bug_instead_of_retrying_forever() -> None:
    async def broken() -> None:
        raise ValueError("not an outage")

    outbox = WriteOutbox(initial_backoff=0.001)
    assert await asyncio.wait_for(outbox.put("broken", broken), 2) is False
    assert outbox.pending == 0


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


async def test_blank_prompt_keeps_the_row(database: Database, utc_clock: ManualUtcClock) -> None:
    ledger = UsageLedger(database, utc_clock)
    async with database.write() as conn:
        job_id = await ledger.insert(conn, guild_id=5, channel_id=6, user_id=1, prompt="private",
                                     size="512*512", created_at=utc_clock.now)
    assert await ledger.blank_prompt(job_id)
    entry = await ledger.get(job_id)
    assert entry is not None and entry.prompt == "" and entry.counted
