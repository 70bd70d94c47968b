"""The ledger's V4 additions on both backends: where results were posted, members' own pages,
and per-day usage for the chart."""

from __future__ import annotations

import datetime as dt

from bot.jobs.model import DIRECT_MESSAGES, JobStatus
from bot.storage import UsageLedger
from bot.storage.database import Database
from bot.storage.repositories.member_history import MEMBER_HISTORY_PAGE_SIZE, MemberHistory

GUILD, OTHER_GUILD = 1_234_567_890_123_456_789, 42
ALICE, BOB = 2**63 - 1, 7
MIDNIGHT = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


async def add(
    ledger: UsageLedger,
    db: Database,
    *,
    at: dt.datetime,
    user: int = ALICE,
    guild: int = GUILD,
    prompt: str = "a fox",
    cost: int = 20_000,
    outcome: JobStatus | None = JobStatus.SUCCEEDED,
) -> int:
    async with db.write() as conn:
        job = await ledger.insert(
            conn, guild_id=guild, channel_id=5, user_id=user, prompt=prompt, size="512*512",
            created_at=at, cost_microusd=cost,
        )
    if outcome is JobStatus.CANCELLED:
        await ledger.mark_submitted(job, "task")
    if outcome is not None:
        await ledger.finish(job, outcome)  # type: ignore[arg-type]
    return job


async def test_result_messages_are_recorded_and_forgotten(database: Database) -> None:
    ledger = UsageLedger(database)
    job = await add(ledger, database, at=MIDNIGHT)
    other = await add(ledger, database, at=MIDNIGHT)
    assert await ledger.record_result_message(job, 2**62, 2**63 - 2)
    assert not await ledger.record_result_message(999, 1, 1)
    await ledger.record_result_message(other, 5, 77)
    entry = await ledger.get(job)
    assert entry is not None
    assert (entry.result_channel_id, entry.result_message_id) == (2**62, 2**63 - 2)

    assert await ledger.forget_result_messages([12345]) == 0  # not ours: nothing written
    assert await ledger.forget_result_messages([]) == 0
    assert await ledger.forget_result_messages([2**63 - 2, 2**63 - 2, 3]) == 1
    gone = await ledger.get(job)
    assert gone is not None and gone.result_message_id is None and gone.result_channel_id is None
    kept = await ledger.get(other)
    assert kept is not None and kept.result_message_id == 77


async def test_member_history_shows_only_that_member_in_that_place(database: Database) -> None:
    ledger = UsageLedger(database)
    history = MemberHistory(ledger)
    for n in range(MEMBER_HISTORY_PAGE_SIZE + 2):
        await add(ledger, database, at=MIDNIGHT + dt.timedelta(minutes=n), prompt=f"mine {n}")
    await add(ledger, database, at=MIDNIGHT, user=BOB, prompt="bob's")
    await add(ledger, database, at=MIDNIGHT, guild=OTHER_GUILD, prompt="elsewhere")
    await add(ledger, database, at=MIDNIGHT, guild=DIRECT_MESSAGES, prompt="in a DM")

    first = await history.page(ALICE, GUILD, 1)
    assert first.total == MEMBER_HISTORY_PAGE_SIZE + 2 and first.has_more
    assert first.entries[0].prompt == f"mine {MEMBER_HISTORY_PAGE_SIZE + 1}"  # newest first
    last = await history.page(ALICE, GUILD, 99)  # past the end: the last page
    assert last.offset == MEMBER_HISTORY_PAGE_SIZE
    assert [e.prompt for e in last.entries] == ["mine 1", "mine 0"]
    every = [*first.entries, *last.entries]
    assert {e.user_id for e in every} == {ALICE} and {e.guild_id for e in every} == {GUILD}

    dms = await history.page(ALICE, None, 1)
    assert [e.prompt for e in dms.entries] == ["in a DM"]
    assert (await history.page(BOB, None, 1)).total == 0
    assert [e.prompt for e in (await history.page(BOB, GUILD, 1)).entries] == ["bob's"]


async def test_daily_usage_buckets_utc_days_by_outcome(database: Database) -> None:
    ledger = UsageLedger(database)
    await add(ledger, database, at=MIDNIGHT)  # the first instant of day 0
    await add(ledger, database, at=MIDNIGHT + dt.timedelta(hours=23, minutes=59, seconds=59))
    await add(ledger, database, at=MIDNIGHT + dt.timedelta(hours=12), outcome=JobStatus.FAILED)
    await add(ledger, database, at=MIDNIGHT + dt.timedelta(days=2, hours=1),
              outcome=JobStatus.CANCELLED)
    await add(ledger, database, at=MIDNIGHT + dt.timedelta(days=2, hours=2), outcome=None)
    await add(ledger, database, at=MIDNIGHT - dt.timedelta(seconds=1))  # the day before
    await add(ledger, database, at=MIDNIGHT + dt.timedelta(days=3))  # the day after the range
    await add(ledger, database, at=MIDNIGHT, guild=OTHER_GUILD)

    days = await ledger.daily_usage(MIDNIGHT, 3, GUILD)
    assert [d.day for d in days] == [dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)]
    assert days[0].images_by_status == {JobStatus.SUCCEEDED: 2, JobStatus.FAILED: 1}
    assert days[0].spent_microusd == 40_000  # the failed one is refunded
    assert days[1].images_by_status == {} and days[1].spent_microusd == 0
    assert days[2].images_by_status == {JobStatus.CANCELLED: 1, JobStatus.RESERVED: 1}
    assert days[2].spent_usd == 0.04
