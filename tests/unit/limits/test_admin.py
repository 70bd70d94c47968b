"""GuildAdmin on both database backends: validation, audit log lines, and effects on admission."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import pytest

from bot.clock import WallClock
from bot.imaging import ImageSize
from bot.jobs.model import JobRequest, JobStatus
from bot.limits.admin import (
    HISTORY_PAGE_SIZE,
    MAX_BLOCKED_TERMS,
    AdminInputError,
    AdminProblem,
    GuildAdmin,
    RoleLimitsInput,
)
from bot.limits.admission import AdmissionService
from bot.limits.names import LimitName, RefusalReason
from bot.limits.policy import GuildLimits, LimitPolicy, UserLimits
from bot.storage import ModerationRepo, NsfwPolicy
from bot.storage.database import Database
from bot.storage.repository_set import Repositories
from bot.wording.refusals import admin_error_text

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock

pytestmark = pytest.mark.timeout(60)

GUILD, CHANNEL, MOD, ALICE, BOB = 10, 20, 30, 40, 50
DEFAULTS = LimitPolicy(
    UserLimits(2, dt.timedelta(minutes=10), 0, 25),
    GuildLimits(0, 0, 0.0),
    price_per_image_usd=0.02,
)


class Admin(GuildAdmin):
    """GuildAdmin with admission over the same database, as the composition root wires them."""

    def __init__(self, db: Database, clock: WallClock) -> None:
        repositories = Repositories.over(db, clock)
        super().__init__(repositories, DEFAULTS, clock=clock)
        self.admissions = AdmissionService(repositories, DEFAULTS, clock=clock)
        self.moderation = ModerationRepo(db, clock)


def make_admin(db: Database, clock: ManualUtcClock) -> Admin:
    return Admin(db, clock)


async def generate(admin: Admin, user: int, prompt: str = "a heron", **kw: object) -> bool:
    """One image start to finish (succeeded); False if admission refused it."""
    request = JobRequest(GUILD, CHANNEL, user, prompt, ImageSize(512, 512), **kw)  # type: ignore[arg-type]
    admission = await admin.admissions.admit(request)
    if admission.job_id is None:
        return False
    await admin.admissions.finish(admission.job_id, JobStatus.SUCCEEDED)
    return True


async def test_set_and_reset_limits_are_logged_and_applied(
    database: Database, utc_clock: ManualUtcClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.limits.admin")
    admin = make_admin(database, utc_clock)
    change = await admin.set_limit(GUILD, MOD, LimitName.PER_WINDOW, 1)
    assert (change.before.value, change.after.value, change.after.overridden) == (2, 1, True)
    assert f"guild {GUILD}: user {MOD} changed limit per_window 2 (default) → 1" in caplog.text

    assert await generate(admin, ALICE)
    assert not await generate(admin, ALICE)
    await admin.set_limit(GUILD, MOD, LimitName.WINDOW_MINUTES, 1)
    utc_clock.advance(minutes=2)
    assert await generate(admin, ALICE)  # the shorter window let the first one go

    await admin.set_limit(GUILD, MOD, LimitName.GUILD_SPEND_USD, 0.5)
    changes = await admin.reset_limit(GUILD, MOD, None)
    assert {c.after.name for c in changes} == set(LimitName)
    assert not any(c.after.overridden for c in changes)
    assert "limit guild_spend_usd 0.5 → 0.0 (default)" in caplog.text
    snapshot = await admin.snapshot(GUILD)
    assert not any(limit.overridden for limit in snapshot.limits)


async def test_nsfw_policy_survives_a_limit_reset(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    admin = make_admin(database, utc_clock)
    assert await admin.set_nsfw_policy(GUILD, MOD, NsfwPolicy.SPOILER) is NsfwPolicy.BLOCK
    await admin.set_limit(GUILD, MOD, LimitName.USER_DAILY, 3)
    await admin.reset_limit(GUILD, MOD, None)
    assert (await admin.snapshot(GUILD)).nsfw_policy is NsfwPolicy.SPOILER


async def test_roles_overrides_and_exemptions(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    admin = make_admin(database, utc_clock)
    artists, vips = 700, 800
    await admin.set_role(GUILD, MOD, artists, RoleLimitsInput(per_window=3))
    assert await admin.add_exempt(GUILD, MOD, vips)
    assert not await admin.add_exempt(GUILD, MOD, vips)
    for _ in range(3):
        assert await generate(admin, ALICE, role_ids=[artists])
    assert not await generate(admin, ALICE, role_ids=[artists])
    for _ in range(5):
        assert await generate(admin, BOB, role_ids=[vips])
    snapshot = await admin.snapshot(GUILD)
    assert [o.role_id for o in snapshot.role_overrides] == [artists]
    assert snapshot.exempt_roles == {vips}
    assert await admin.clear_role(GUILD, MOD, artists)
    assert not await admin.clear_role(GUILD, MOD, artists)
    assert await admin.remove_exempt(GUILD, MOD, vips)
    assert not await generate(admin, BOB, role_ids=[vips])
    with pytest.raises(AdminInputError):
        await admin.set_role(GUILD, MOD, artists, RoleLimitsInput())


async def test_words_are_normalized_and_capped(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    admin = make_admin(database, utc_clock)
    assert await admin.add_word(GUILD, MOD, "  Red   DRAGON ") == ("red dragon", True)
    assert await admin.add_word(GUILD, MOD, "red dragon") == ("red dragon", False)
    assert not await generate(admin, ALICE, "a RED dragon")
    assert await admin.remove_word(GUILD, MOD, "Red Dragon") == ("red dragon", True)
    assert await generate(admin, ALICE, "a RED dragon")
    with pytest.raises(AdminInputError) as unblockable:
        await admin.add_word(GUILD, MOD, "* *")
    assert unblockable.value.problem is AdminProblem.TERM_NOT_BLOCKABLE
    assert "can't be blocked" in admin_error_text(unblockable.value)
    for n in range(MAX_BLOCKED_TERMS):
        await admin.moderation.add_blocked_term(GUILD, f"w{n}")
    with pytest.raises(AdminInputError) as too_many:
        await admin.add_word(GUILD, MOD, "one more")
    assert too_many.value.problem is AdminProblem.TOO_MANY_TERMS
    assert "already blocks" in admin_error_text(too_many.value)


async def test_channels_bans_and_moderators(database: Database, utc_clock: ManualUtcClock) -> None:
    admin = make_admin(database, utc_clock)
    assert await admin.allow_channel(GUILD, MOD, 99)
    assert not await generate(admin, ALICE)
    assert await generate(admin, MOD, is_moderator=True)
    assert await admin.remove_channel(GUILD, MOD, 99)
    assert not await admin.remove_channel(GUILD, MOD, 99)
    assert await admin.channels(GUILD) == frozenset()

    await admin.ban(GUILD, MOD, ALICE, "spam")
    request = JobRequest(GUILD, CHANNEL, ALICE, "x", ImageSize(512, 512))
    refused = await admin.admissions.admit(request)
    assert refused.refusal is not None and refused.refusal.reason is RefusalReason.BANNED
    [ban] = await admin.bans(GUILD)
    assert (ban.user_id, ban.reason, ban.banned_by) == (ALICE, "spam", MOD)
    assert await admin.unban(GUILD, MOD, ALICE)
    assert not await admin.unban(GUILD, MOD, ALICE)
    assert await generate(admin, ALICE)


async def test_reset_usage_waives_today_and_the_window(
    database: Database, utc_clock: ManualUtcClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.limits.admin")
    utc_clock.now = dt.datetime(2025, 3, 14, 0, 3, tzinfo=dt.UTC)
    admin = make_admin(database, utc_clock)
    utc_clock.advance(minutes=-6)  # 23:57 yesterday: still inside the 10-minute window
    assert await generate(admin, ALICE)
    utc_clock.advance(minutes=6)
    assert await generate(admin, ALICE)
    assert not await generate(admin, ALICE)
    assert await admin.reset_usage(GUILD, MOD, ALICE) == 2
    assert f"user {MOD} changed user {ALICE} usage reset (2 jobs waived)" in caplog.text
    assert await generate(admin, ALICE)
    report = await admin.usage(GUILD)
    assert report.spend.today_usd == pytest.approx(0.04)  # waived jobs still cost money


async def test_usage_report_and_history_pages(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    admin = make_admin(database, utc_clock)
    await admin.set_limit(GUILD, MOD, LimitName.PER_WINDOW, 0)
    for n in range(7):
        assert await generate(admin, ALICE, f"alice {n}")
        utc_clock.advance(seconds=1)
    for n in range(3):
        assert await generate(admin, BOB, f"bob {n}")
        utc_clock.advance(seconds=1)
    failed = await admin.admissions.admit(
        JobRequest(GUILD, CHANNEL, BOB, "fails", ImageSize(512, 512))
    )
    assert failed.job_id is not None
    await admin.admissions.finish(failed.job_id, JobStatus.FAILED)

    report = await admin.usage(GUILD)
    assert (report.images_today, report.jobs_today, report.failed_today) == (10, 11, 1)
    assert report.members_today == 2
    assert report.top_users == [(ALICE, 7), (BOB, 3)]
    assert report.spend.today_usd == pytest.approx(0.20)
    assert report.spend.month_usd == pytest.approx(0.20)

    first = await admin.history(GUILD)
    assert (first.total, len(first.entries)) == (11, HISTORY_PAGE_SIZE)
    assert first.entries[0].prompt == "fails"
    second = await admin.history(GUILD, page=2)
    assert [e.prompt for e in second.entries] == ["alice 2", "alice 1", "alice 0"]
    bob = await admin.history(GUILD, user_id=BOB)
    assert bob.total == 4 and {e.user_id for e in bob.entries} == {BOB}
    assert (await admin.history(GUILD, page=0)).offset == 0
