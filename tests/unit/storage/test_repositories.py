"""Repositories on both backends: guild settings, roles, moderation, ledger, durations, journal."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

import pytest

from bot.jobs.model import JobStage, JobStatus, shard_of
from bot.storage import (
    GuildConfig,
    GuildSettingsRepo,
    JobJournal,
    JournalEntry,
    ModerationRepo,
    NsfwPolicy,
    RoleOverride,
    RoleOverrideRepo,
    StateStore,
    UsageLedger,
)
from bot.storage.database import Database
from bot.storage.repositories.journal import ShardOwners
from bot.storage.repositories.ledger import UsageWindow
from bot.storage.repositories.state import DurationStore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from fakes.clock import ManualUtcClock


SNOWFLAKE = 1_234_567_890_123_456_789  # Discord ids need all 64 bits


async def test_guild_settings_default_save_and_reset(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    repo = GuildSettingsRepo(database, utc_clock)
    assert await repo.get(SNOWFLAKE) == GuildConfig(SNOWFLAKE)
    changed = dataclasses.replace(
        GuildConfig(SNOWFLAKE),
        nsfw_policy=NsfwPolicy.SPOILER,
        user_daily_quota=0,
        guild_daily_spend_cap_usd=2.5,
    )
    await repo.save(changed)
    assert await repo.get(SNOWFLAKE) == changed
    await repo.save(dataclasses.replace(changed, user_daily_quota=None))
    assert (await repo.get(SNOWFLAKE)).user_daily_quota is None
    assert await repo.get(1) == GuildConfig(1)  # other guilds untouched
    await repo.reset(SNOWFLAKE)
    assert await repo.get(SNOWFLAKE) == GuildConfig(SNOWFLAKE)


async def test_role_overrides_and_exemptions(database: Database) -> None:
    repo = RoleOverrideRepo(database)
    await repo.set(1, RoleOverride(10, daily_quota=100))
    await repo.set(1, RoleOverride(11, generations_per_window=0, max_concurrent_jobs=4))
    await repo.set(1, RoleOverride(10, daily_quota=50))  # replaces
    await repo.set(2, RoleOverride(10, daily_quota=1))
    assert await repo.list(1) == [
        RoleOverride(10, daily_quota=50),
        RoleOverride(11, generations_per_window=0, max_concurrent_jobs=4),
    ]
    assert await repo.add_exempt(1, 12) is True
    assert await repo.add_exempt(1, 12) is False
    assert await repo.exempt_roles(1) == {12}

    member = await repo.for_member(1, [10, 99])
    assert member.overrides == (RoleOverride(10, daily_quota=50),) and not member.exempt
    assert (await repo.for_member(1, [12])).exempt
    assert (await repo.for_member(2, [12])).exempt is False
    assert await repo.for_member(1, []) == (await repo.for_member(3, []))

    assert await repo.remove(1, 10) and not await repo.remove(1, 10)
    assert await repo.remove_exempt(1, 12) and not await repo.remove_exempt(1, 12)
    assert [o.role_id for o in await repo.list(1)] == [11]


async def test_moderation_lists(database: Database, utc_clock: ManualUtcClock) -> None:
    repo = ModerationRepo(database, utc_clock)
    assert await repo.add_blocked_term(1, "gore", added_by=5)
    assert not await repo.add_blocked_term(1, "gore")
    await repo.add_blocked_term(1, "blood*")
    assert await repo.blocked_terms(1) == ["blood*", "gore"]
    assert await repo.remove_blocked_term(1, "gore")

    assert await repo.allowed_channels(1) == frozenset()
    assert await repo.allow_channel(1, 100) and not await repo.allow_channel(1, 100)
    assert await repo.allowed_channels(1) == {100}
    assert await repo.disallow_channel(1, 100)

    await repo.ban(1, SNOWFLAKE, reason="spam", banned_by=5)
    await repo.ban(1, SNOWFLAKE, reason="spam again", banned_by=6)  # re-ban updates
    assert await repo.is_banned(1, SNOWFLAKE) and not await repo.is_banned(2, SNOWFLAKE)
    [ban] = await repo.bans(1)
    assert (ban.user_id, ban.reason, ban.banned_by, ban.created_at) == (
        SNOWFLAKE,
        "spam again",
        6,
        utc_clock.now,
    )
    rules = await repo.rules(1, SNOWFLAKE)
    assert rules.user_banned and rules.blocked_terms == ("blood*",)
    assert await repo.unban(1, SNOWFLAKE) and not await repo.is_banned(1, SNOWFLAKE)


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


async def test_duration_store_round_trip(database: Database) -> None:
    store = DurationStore(database)
    assert await store.load("model") is None
    await store.save("model", {"1024*1024": {"mean": 12.5, "n": 3}})
    await store.save("model", {"1024*1024": {"mean": 11.0, "n": 4}})
    assert await store.load("model") == {"1024*1024": {"mean": 11.0, "n": 4}}


async def _reserve(database: Database, ledger: UsageLedger, when: dt.datetime) -> int:
    async with database.write() as conn:
        return await ledger.insert(
            conn, guild_id=SNOWFLAKE, channel_id=2, user_id=3, prompt="fox", size="1024*1024",
            created_at=when,
        )


async def test_job_journal_follows_the_ledger(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    journal = JobJournal(database, ledger, utc_clock)
    first = await _reserve(database, ledger, utc_clock.now)
    second = await _reserve(database, ledger, utc_clock.now)
    await journal.record_many([JournalEntry(
        first, "owner-a", shard_of(SNOWFLAKE, 4), 2, 3, guild_id=SNOWFLAKE, user_name="ann",
        application_id=SNOWFLAKE, interaction_id=SNOWFLAKE, interaction_token="secret-token",
        interaction_at=utc_clock.now,
    )])
    await journal.record_many([JournalEntry(second, "owner-a", 0, 2, 3)])
    utc_clock.advance(seconds=1)
    assert await journal.update(first, state=JobStage.SUBMITTING, message_id=77)
    assert not await journal.update(999, state=JobStage.WAITING)
    await journal.mark_submitted_many([(first, "t-1")])

    entry = await journal.get(first)
    assert entry is not None
    assert (entry.state, entry.task_id, entry.message_id, entry.shard_id) == (
        JobStage.SUBMITTED, "t-1", 77, (SNOWFLAKE >> 22) % 4)
    assert entry.interaction_token == "secret-token" and "secret-token" not in repr(entry)
    assert entry.interaction_id == SNOWFLAKE and entry.updated_at == utc_clock.now
    stored = await ledger.get(first)
    assert stored is not None and stored.status is JobStatus.SUBMITTED and stored.task_id == "t-1"
    assert [e.job_id for e in await journal.entries()] == [first, second]

    # Settling records the outcome and forgets the row (token included) in one transaction.
    assert await journal.settle(first, JobStatus.SUCCEEDED, timings={"total": 3.0})
    assert not await journal.settle(first, JobStatus.SUCCEEDED)  # repeating is harmless
    assert await journal.get(first) is None
    stored = await ledger.get(first)
    assert stored is not None and stored.status is JobStatus.SUCCEEDED

    # The sweep finds active rows that no journal row covers, once they are old enough.
    orphan = await _reserve(database, ledger, utc_clock.now - dt.timedelta(minutes=5))
    assert await journal.unjournaled_active(utc_clock.now - dt.timedelta(minutes=1)) == [orphan]


async def test_job_journal_records_a_batch_in_one_transaction_or_none_of_it(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    ledger = UsageLedger(database, utc_clock)
    journal = JobJournal(database, ledger, utc_clock)
    jobs = [await _reserve(database, ledger, utc_clock.now) for _ in range(3)]
    await journal.record_many([])
    await journal.record_many([
        JournalEntry(job, "owner-a", 0, 2, 3, user_name=f"m{job}") for job in jobs[:2]])
    assert [(e.job_id, e.user_name) for e in await journal.entries()] == [
        (jobs[0], f"m{jobs[0]}"), (jobs[1], f"m{jobs[1]}")]
    # A batch with one bad entry (a job already journaled) leaves no row of it behind.
    with pytest.raises(Exception):  # noqa: B017  the backend's IntegrityError
        await journal.record_many([
            JournalEntry(jobs[2], "owner-a", 0, 2, 3), JournalEntry(jobs[0], "owner-a", 0, 2, 3)])
    assert [e.job_id for e in await journal.entries()] == jobs[:2]

    utc_clock.advance(seconds=5)
    await journal.mark_submitting_many([])
    await journal.mark_submitting_many([jobs[1], 999, jobs[1]])  # unknown ids change nothing
    states = {e.job_id: (e.state, e.updated_at) for e in await journal.entries()}
    assert states[jobs[1]] == (JobStage.SUBMITTING, utc_clock.now)
    assert states[jobs[0]][0] is not JobStage.SUBMITTING


async def test_shard_owners_heartbeat_and_takeover(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    owners = ShardOwners(database, utc_clock)
    await owners.claim([0, 1], "a")
    utc_clock.advance(seconds=10)
    await owners.claim([1], "b")  # b now runs shard 1 (a died, or a rolling restart)
    assert await owners.heartbeat([0, 1], "a") == {0}
    assert await owners.live(dt.timedelta(seconds=30)) == {0: "a", 1: "b"}
    utc_clock.advance(seconds=25)
    assert await owners.heartbeat([0], "a") == {0}
    utc_clock.advance(seconds=10)
    assert await owners.live(dt.timedelta(seconds=30)) == {0: "a"}  # b stopped beating


async def test_state_store(database: Database) -> None:
    store = StateStore(database)
    assert await store.get("tree-hash") is None
    await store.set("tree-hash", "abc")
    await store.set("tree-hash", "def")
    assert await store.get("tree-hash") == "def"
