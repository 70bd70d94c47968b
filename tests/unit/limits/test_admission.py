"""AdmissionService on both backends: moderation, limits from the ledger, refunds, atomicity,
look-ups for Re-roll, the NSFW policy, and the refusals members read."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest

from bot.config import Settings
from bot.imaging import ImageSize
from bot.jobs.model import DIRECT_MESSAGES, JobKind, JobRequest, JobStatus
from bot.limits.admin import GuildAdmin
from bot.limits.admission import Admission, AdmissionService
from bot.limits.names import RefusalReason
from bot.limits.policy import LimitPolicy
from bot.limits.pricing import cost_microusd
from bot.storage import (
    GuildConfig,
    GuildSettingsRepo,
    ModerationRepo,
    NsfwPolicy,
    RoleOverride,
    RoleOverrideRepo,
    UsageLedger,
)
from bot.storage.database import Database
from bot.storage.repository_set import Repositories
from bot.wording.refusals import refusal_sentence
from tests.unit.limits.test_policy import policy

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock

pytestmark = pytest.mark.timeout(60)

GUILD, CHANNEL, USER = 111, 222, 333


def make_policy(
    per_window: int = 0, concurrent: int = 0, daily: int = 0, **limits: Any
) -> LimitPolicy:
    """`test_policy.policy` with every member limit off unless a test sets it."""
    return policy(per_window, concurrent, daily, **limits)


def request(user: int = USER, prompt: str = "a red fox", **changes: object) -> JobRequest:
    base = JobRequest(GUILD, CHANNEL, user, prompt, ImageSize(1024, 1024))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def refused_by(admission: Admission) -> RefusalReason | None:
    return None if admission.refusal is None else admission.refusal.reason


def service(db: Database, clock: ManualUtcClock, policy: LimitPolicy) -> AdmissionService:
    return AdmissionService(Repositories.over(db, clock), policy, clock=clock)


async def test_admit_reserves_a_job_and_finish_closes_it(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy(daily=5))
    admission = await svc.admit(request(reroll_of=41))
    assert admission.allowed and admission.job_id is not None
    entry = await svc.lookup(admission.job_id)
    assert entry is not None
    assert (entry.status, entry.size, entry.reroll_of, entry.cost_microusd) == (
        JobStatus.RESERVED,
        "1024*1024",
        41,
        20_000,
    )
    assert await svc.mark_submitted(admission.job_id, "task-9")
    assert await svc.finish(admission.job_id, JobStatus.SUCCEEDED, timings={"total": 9.5})
    assert not await svc.finish(admission.job_id, JobStatus.FAILED)
    assert (await svc.lookup(admission.job_id)).status is JobStatus.SUCCEEDED  # type: ignore[union-attr]


async def test_failed_and_refused_jobs_do_not_count(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy(daily=2))
    first = await svc.admit(request())
    second = await svc.admit(request())
    assert first.allowed and second.allowed
    refused = await svc.admit(request())
    assert refused_by(refused) is RefusalReason.USER_DAILY
    assert refused.job_id is None

    assert first.job_id is not None and second.job_id is not None
    await svc.mark_submitted(first.job_id, "t1")
    await svc.finish(first.job_id, JobStatus.FAILED, error="upstream error")
    await svc.finish(second.job_id, JobStatus.REFUNDED)
    again = [await svc.admit(request()) for _ in range(3)]
    assert [a.allowed for a in again] == [True, True, False]


async def test_rerolls_count_like_new_requests(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy(per_window=2))
    original = await svc.admit(request())
    reroll = await svc.admit(request(reroll_of=original.job_id))
    assert reroll.allowed
    assert refused_by(await svc.admit(request(reroll_of=original.job_id))) is (
        RefusalReason.PER_WINDOW
    )


async def test_window_slides_with_the_clock(database: Database, utc_clock: ManualUtcClock) -> None:
    svc = service(database, utc_clock, make_policy(per_window=2))
    started = utc_clock.now
    await svc.admit(request())
    utc_clock.advance(minutes=4)
    await svc.admit(request())
    refused = (await svc.admit(request())).refusal
    assert refused is not None and refused.retry_at == started + dt.timedelta(minutes=10)
    utc_clock.now = refused.retry_at
    assert (await svc.admit(request())).allowed


async def test_daily_quota_resets_at_utc_midnight(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    utc_clock.now = dt.datetime(2025, 3, 14, 23, 59, tzinfo=dt.UTC)
    svc = service(database, utc_clock, make_policy(daily=1))
    assert (await svc.admit(request())).allowed
    refused = (await svc.admit(request())).refusal
    assert refused is not None and refused.retry_at == dt.datetime(2025, 3, 15, tzinfo=dt.UTC)
    utc_clock.advance(minutes=1)
    assert (await svc.admit(request())).allowed


async def test_concurrency_frees_when_a_job_finishes_or_goes_stale(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy(concurrent=1))
    running = await svc.admit(request())
    assert refused_by(await svc.admit(request())) is RefusalReason.USER_CONCURRENT
    assert running.job_id is not None
    await svc.finish(running.job_id, JobStatus.SUCCEEDED)
    lost = await svc.admit(request())
    assert lost.allowed  # ...and its process "crashes" without finishing it
    utc_clock.advance(seconds=svc.active_ttl.total_seconds() + 1)
    assert (await svc.admit(request())).allowed


async def test_moderation_refusals(database: Database, utc_clock: ManualUtcClock) -> None:
    svc = service(database, utc_clock, make_policy())
    moderation = ModerationRepo(database, utc_clock)
    await moderation.add_blocked_term(GUILD, "gore*")
    await moderation.allow_channel(GUILD, 500)
    await moderation.ban(GUILD, 666, reason="spam")

    assert (await svc.admit(request(channel_id=500))).allowed
    assert (await svc.admit(request(channel_id=501, parent_channel_id=500))).allowed  # thread
    wrong = await svc.admit(request(channel_id=501))
    assert wrong.refusal is not None and wrong.refusal.reason is RefusalReason.CHANNEL
    assert wrong.refusal.allowed_channel_ids == {500}
    blocked = await svc.admit(request(channel_id=500, prompt="so much GOREY detail"))
    assert blocked.refusal is not None and blocked.refusal.reason is RefusalReason.BLOCKED_TERM
    assert blocked.refusal.blocked_term == "gore*"
    banned = await svc.admit(request(user=666, channel_id=500))
    assert refused_by(banned) is RefusalReason.BANNED
    # Moderators can't be locked out by the ban list or the allow-list; blocked terms still apply.
    assert (await svc.admit(request(user=666, channel_id=501, is_moderator=True))).allowed
    assert not (await svc.admit(request(prompt="gore", channel_id=500, is_moderator=True))).allowed
    history = await UsageLedger(database).history(GUILD)
    assert history.total == 3  # refusals leave no ledger rows


async def test_guild_overrides_roles_and_exemptions(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy(daily=1))
    await GuildSettingsRepo(database).save(GuildConfig(GUILD, user_daily_quota=2))
    roles = RoleOverrideRepo(database)
    await roles.set(GUILD, RoleOverride(10, daily_quota=3))
    await roles.set(GUILD, RoleOverride(11, daily_quota=0))
    await roles.add_exempt(GUILD, 12)

    async def admitted(user: int, roles: tuple[int, ...]) -> int:
        results = [await svc.admit(request(user=user, role_ids=roles)) for _ in range(6)]
        return sum(a.allowed for a in results)

    assert await admitted(1, ()) == 2  # the guild's override
    assert await admitted(2, (10,)) == 3  # the role's
    assert await admitted(3, (10, 11)) == 6  # 0 = unlimited is the most generous
    assert await admitted(4, (12,)) == 6  # exempt
    other_guild = await svc.admit(dataclasses.replace(request(user=1), guild_id=GUILD + 1))
    assert other_guild.allowed


async def test_guild_daily_cap_and_spend_caps(
    database: Database, utc_clock: ManualUtcClock, caplog: pytest.LogCaptureFixture
) -> None:
    svc = service(database, utc_clock, make_policy(guild_daily=3))
    assert sum([(await svc.admit(request(user=u))).allowed for u in range(5)]) == 3

    spend = service(database, utc_clock, make_policy(bot_spend=0.05, price=0.02))
    with caplog.at_level(logging.WARNING, logger="bot.limits.admission"):
        results = [await spend.admit(request(user=50 + u)) for u in range(5)]
    # 3 images already cost 0.06 > 0.05 bot-wide, so nothing more today.
    assert {refused_by(a) for a in results} == {RefusalReason.BOT_SPEND}
    assert sum("spend cap" in r.message for r in caplog.records) == 1  # one notice a day
    utc_clock.advance(days=1)
    assert (await spend.admit(request())).allowed


async def test_quota_status_and_spend_report(database: Database, utc_clock: ManualUtcClock) -> None:
    svc = service(
        database, utc_clock, make_policy(per_window=5, concurrent=2, daily=25, guild_spend=10.0)
    )
    job_ids = [(await svc.admit(request())).job_id for _ in range(2)]
    assert job_ids[0] is not None
    await svc.finish(job_ids[0], JobStatus.FAILED)
    assert (await svc.admit(request())).allowed
    status = await svc.quota_status(GUILD, USER)
    assert (status.daily_used, status.daily_remaining, status.active) == (2, 23, 2)
    assert status.window_remaining == 3
    assert status.next_request is not None
    assert status.next_request.reason is RefusalReason.USER_CONCURRENT

    admin = GuildAdmin(Repositories.over(database, utc_clock), svc.defaults, clock=utc_clock)
    report = await admin.spend_report(GUILD)
    assert report.today_usd == pytest.approx(0.04) and report.month_usd == pytest.approx(0.04)
    assert report.daily_cap_usd == 10.0
    assert (await admin.spend_report()).daily_cap_usd == 0.0


def test_from_settings_uses_the_limit_settings(tmp_path: object) -> None:
    settings = Settings(user_daily_quota=7, job_deadline=1200.0, price_per_image_usd=0.5)
    svc = AdmissionService.from_settings(
        Repositories.over(None), settings)  # type: ignore[arg-type]
    assert svc.defaults.user.daily == 7 and svc.defaults.price_per_image_usd == 0.5
    assert svc.active_ttl == dt.timedelta(seconds=2400)


@pytest.mark.parametrize("limit_kind", ["per_window", "concurrent", "daily"])
async def test_twenty_simultaneous_admissions_admit_exactly_three(
    database: Database, utc_clock: ManualUtcClock, limit_kind: str
) -> None:
    svc = service(database, utc_clock, make_policy(**{limit_kind: 3}))
    results = await asyncio.gather(*(svc.admit(request()) for _ in range(20)))
    assert sum(a.allowed for a in results) == 3
    assert (await UsageLedger(database).history(GUILD)).total == 3


async def test_guild_limit_holds_across_members_under_concurrency(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy(guild_concurrent=4))
    results = await asyncio.gather(*(svc.admit(request(user=u)) for u in range(12)))
    assert sum(a.allowed for a in results) == 4


# ---- what the Discord edge asks: admit, record, finish, look up, NSFW policy ------------------

HERON = JobRequest(
    guild_id=5,
    channel_id=6,
    user_id=7,
    prompt="a heron",
    size=ImageSize(768, 1024),
    user_name="kim",
)


async def test_admits_records_and_refunds(database: Database, utc_clock: ManualUtcClock) -> None:
    svc = service(database, utc_clock, make_policy(daily=2))
    first = await svc.admit(HERON)
    assert first.allowed and first.job_id is not None
    await svc.mark_submitted(first.job_id, "task-1")
    await svc.finish(first.job_id, JobStatus.FAILED, task_id="task-1", timings={"total": 3.5})
    second = await svc.admit(dataclasses.replace(HERON, reroll_of=first.job_id))
    third = await svc.admit(HERON)
    assert second.allowed and third.allowed  # the failed job was refunded
    refused = (await svc.admit(HERON)).refusal
    assert refused is not None
    assert refusal_sentence(refused) == "Sorry, you have used your 2 images for today."
    assert refused.retry_at == dt.datetime(2025, 3, 15, tzinfo=dt.UTC)

    entry = await svc.lookup(first.job_id)
    assert entry is not None
    assert (entry.status, entry.timings) == (JobStatus.FAILED, {"total": 3.5})


async def test_lookup_and_direct_messages(database: Database, utc_clock: ManualUtcClock) -> None:
    svc = service(database, utc_clock, make_policy(daily=2))
    dm = await svc.admit(dataclasses.replace(HERON, guild_id=None, channel_id=None))
    assert dm.job_id is not None
    stored = await svc.lookup(dm.job_id)
    assert stored is not None
    assert (stored.job_id, stored.prompt, stored.size, stored.user_id, stored.guild_id) == (
        dm.job_id,
        "a heron",
        "768*1024",
        7,
        DIRECT_MESSAGES,
    )
    assert await svc.lookup(424242) is None


async def test_nsfw_policy_and_blocked_term_message(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy(daily=2))
    assert await svc.nsfw_policy(5) == "block"
    assert await svc.nsfw_policy(None) == "block"
    await GuildSettingsRepo(database).save(GuildConfig(5, nsfw_policy=NsfwPolicy.SPOILER))
    assert await svc.nsfw_policy(5) == "spoiler"
    await ModerationRepo(database).add_blocked_term(5, "heron")
    refused = (await svc.admit(HERON)).refusal
    assert refused is not None
    assert refusal_sentence(refused) == "Sorry, your prompt contains a blocked word (heron)."


async def test_quota_status_reports_bans_except_for_moderators(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = service(database, utc_clock, make_policy())
    await ModerationRepo(database).ban(GUILD, USER, reason="spam")
    assert (await svc.quota_status(GUILD, USER)).banned
    assert not (await svc.quota_status(GUILD, USER, is_moderator=True)).banned
    assert not (await svc.quota_status(None, USER)).banned  # direct messages


async def test_an_edit_is_one_image_at_its_own_price_under_the_spend_cap(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    settings = Settings(price_per_image_usd=0.02, price_per_edit_usd=0.03)
    svc = service(database, utc_clock, make_policy(bot_spend=0.05, price=0.02))
    edit = request(kind=JobKind.EDIT, cost_microusd=cost_microusd(JobKind.EDIT, settings))
    first = await svc.admit(edit)
    assert first.job_id is not None
    entry = await svc.lookup(first.job_id)
    assert entry is not None and (entry.images, entry.cost_microusd) == (1, 30_000)
    # 0.03 spent: a 0.02 generation still fits under 0.05, a second 0.03 edit would not.
    assert refused_by(await svc.admit(edit)) is RefusalReason.BOT_SPEND
    assert (await svc.admit(request())).allowed
    # An edit is one image under the member's daily quota, like a generation.
    quota = service(database, utc_clock, make_policy(daily=1))
    assert (await quota.admit(dataclasses.replace(edit, user_id=777))).allowed
    assert refused_by(await quota.admit(request(user=777))) is RefusalReason.USER_DAILY
