"""The host's ceilings over every server's limits: pure policy, moderators refused above them,
and admission (both backends) holding old settings to a ceiling lowered later."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

import pytest

from bot.config import Settings
from bot.imaging import ImageSize
from bot.jobs.model import Install, JobRequest, JobStatus
from bot.limits.admin import AdminInputError, AdminProblem, GuildAdmin, RoleLimitsInput
from bot.limits.admission import AdmissionService, UserInstallRules
from bot.limits.names import LimitName, RefusalReason
from bot.limits.policy import (
    GuildLimits,
    HostCeilings,
    LimitOverrides,
    LimitPolicy,
    RoleLimits,
    UserLimits,
    evaluate,
    quota_status,
    within_ceiling,
)
from bot.storage import GuildConfig, RoleOverride
from bot.storage.database import Database
from bot.storage.repository_set import Repositories
from bot.usage import Usage
from bot.wording.admin_presentation import role_override_line, settings_card
from bot.wording.refusals import admin_error_text

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock

pytestmark = pytest.mark.timeout(60)

GUILD, CHANNEL, MOD, ALICE = 10, 20, 30, 40
NOW = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=10)
CEILINGS = HostCeilings(user_daily=3, guild_daily=5, guild_daily_spend_usd=0.10)


def open_policy(ceilings: HostCeilings = CEILINGS) -> LimitPolicy:
    """Every limit unlimited, under these ceilings."""
    return LimitPolicy(
        UserLimits.unlimited(WINDOW), GuildLimits(0, 0, 0.0),
        price_per_image_usd=0.02, ceilings=ceilings,
    )


# ---- the policy -----------------------------------------------------------------------------


def test_within_ceiling_keeps_lower_values_and_reads_unlimited_as_the_ceiling() -> None:
    assert within_ceiling(2, 3) == 2
    assert within_ceiling(9, 3) == 3
    assert within_ceiling(0, 3) == 3  # unlimited → the ceiling
    assert within_ceiling(9, 0) == 9 and within_ceiling(0, 0) == 0  # no ceiling
    assert within_ceiling(0.0, 0.1) == 0.1


def test_unlimited_defaults_and_overrides_are_held_to_the_ceilings() -> None:
    policy = open_policy()
    assert (policy.user.daily, policy.guild.daily, policy.guild.daily_spend_usd) == (3, 5, 0.10)
    guild = policy.for_guild(
        LimitOverrides(daily=1000, guild_daily=0, guild_daily_spend_usd=50.0)
    )
    assert (guild.user.daily, guild.guild.daily, guild.guild.daily_spend_usd) == (3, 5, 0.10)
    stricter = policy.for_guild(LimitOverrides(daily=1, guild_daily=2, guild_daily_spend_usd=0.05))
    assert (stricter.user.daily, stricter.guild.daily) == (1, 2)
    assert stricter.guild.daily_spend_usd == 0.05


def test_roles_and_exemptions_cannot_lift_a_member_past_the_ceiling() -> None:
    policy = open_policy().for_guild(LimitOverrides(daily=2))
    patron, staff = 1, 2
    roles = {patron: RoleLimits(daily=0)}  # a role giving "unlimited"
    assert policy.for_member([patron], roles).user.daily == 3
    exempt = policy.for_member([staff], roles, exempt_role_ids={staff})
    assert exempt.exempt and exempt.user.daily == 3
    assert exempt.user.per_window == 0  # other member limits have no ceiling
    installed = dataclasses.replace(exempt, user=dataclasses.replace(exempt.user, daily=50))
    assert installed.user.daily == 3  # the user-installed app's cap is held to it as well


def test_evaluate_and_quota_status_use_the_held_values() -> None:
    limits = open_policy().for_member([], {})
    assert evaluate(limits, Usage(user_today=2), NOW) is None
    refusal = evaluate(limits, Usage(user_today=3), NOW)
    assert refusal is not None and (refusal.reason, refusal.limit) == (
        RefusalReason.USER_DAILY, 3
    )
    guild_full = evaluate(limits, Usage(guild_today=5), NOW)
    assert guild_full is not None and guild_full.reason is RefusalReason.GUILD_DAILY
    spent = evaluate(limits, Usage(guild_spent_today_microusd=90_000), NOW)
    assert spent is not None and spent.reason is RefusalReason.GUILD_SPEND_USD
    status = quota_status(limits, Usage(user_today=1), NOW)
    assert (status.limits.daily, status.daily_remaining) == (3, 2)


def test_ceilings_come_from_settings() -> None:
    settings = Settings(
        max_user_daily_quota=4, max_guild_daily_cap=40, max_guild_daily_spend_cap_usd=2.5
    )
    policy = LimitPolicy.from_settings(settings)
    assert policy.ceilings == HostCeilings(4, 40, 2.5)
    assert (policy.user.daily, policy.guild.daily, policy.guild.daily_spend_usd) == (4, 40, 2.5)
    assert LimitPolicy.from_settings(Settings()).ceilings == HostCeilings()


# ---- moderators -----------------------------------------------------------------------------


def guild_admin(db: Database, clock: ManualUtcClock, ceilings: HostCeilings) -> GuildAdmin:
    return GuildAdmin(Repositories.over(db, clock), open_policy(ceilings), clock=clock)


@pytest.mark.parametrize(
    ("name", "value", "ceiling"),
    [
        (LimitName.USER_DAILY, 4, 3),
        (LimitName.USER_DAILY, 0, 3),  # unlimited is above any ceiling
        (LimitName.GUILD_DAILY, 6, 5),
        (LimitName.GUILD_SPEND_USD, 0.11, 0.10),
        (LimitName.GUILD_SPEND_USD, 0, 0.10),
    ],
)
async def test_a_moderator_setting_above_the_ceiling_is_refused_naming_it(
    database: Database, utc_clock: ManualUtcClock, name: LimitName, value: float, ceiling: float
) -> None:
    admin = guild_admin(database, utc_clock, CEILINGS)
    with pytest.raises(AdminInputError) as refused:
        await admin.set_limit(GUILD, MOD, name, value)
    assert refused.value.problem is AdminProblem.ABOVE_HOST_CEILING
    assert refused.value.maximum == ceiling
    assert (await admin.guild_config(GUILD)) == GuildConfig(GUILD)  # nothing was stored
    change = await admin.set_limit(GUILD, MOD, name, ceiling)  # the ceiling itself is fine
    assert change.after.value == ceiling


async def test_the_refusal_sentences_name_the_ceiling(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    admin = guild_admin(database, utc_clock, CEILINGS)
    with pytest.raises(AdminInputError) as daily:
        await admin.set_limit(GUILD, MOD, LimitName.USER_DAILY, 100)
    assert admin_error_text(daily.value) == (
        "Images per day (each member) can be at most 3 on this bot: its host set that ceiling "
        "for every server, so choose a value from 1 to 3 (0, unlimited, would be above it too)."
    )
    with pytest.raises(AdminInputError) as spend:
        await admin.set_limit(GUILD, MOD, LimitName.GUILD_SPEND_USD, 5)
    assert admin_error_text(spend.value).startswith(
        "Spend per day in USD (whole server) can be at most $0.10 on this bot"
    )
    assert "from $0.01 to $0.10" in admin_error_text(spend.value)
    with pytest.raises(AdminInputError) as role:
        await admin.set_role(GUILD, MOD, 700, RoleLimitsInput(daily=50))
    assert admin_error_text(role.value).startswith("A role's daily can be at most 3 on this bot")
    with pytest.raises(AdminInputError):
        await admin.set_role(GUILD, MOD, 700, RoleLimitsInput(daily=0))
    await admin.set_role(GUILD, MOD, 700, RoleLimitsInput(per_window=0, daily=3))


async def test_show_gives_the_effective_values_and_the_ceilings(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    await guild_admin(database, utc_clock, HostCeilings()).set_limit(
        GUILD, MOD, LimitName.USER_DAILY, 50
    )  # stored before the host set a ceiling
    admin = guild_admin(database, utc_clock, CEILINGS)
    snapshot = await admin.snapshot(GUILD)
    by_name = {limit.name: limit for limit in snapshot.limits}
    assert (by_name[LimitName.USER_DAILY].value, by_name[LimitName.USER_DAILY].ceiling) == (3, 3)
    assert by_name[LimitName.USER_DAILY].overridden
    assert by_name[LimitName.GUILD_DAILY].value == 5  # default unlimited → the ceiling
    assert by_name[LimitName.PER_WINDOW].ceiling == 0
    card = settings_card(snapshot)
    text = "\n".join([card.description or "", *(f.value for f in card.fields)])
    assert (
        "Images per day (each member): **3** · server (default 3) · at most 3 on this bot" in text
    )
    assert "This bot's host set ceilings" in text
    assert (await admin.spend_report(GUILD)).daily_cap_usd == 0.10
    assert role_override_line(RoleOverride(7, None, None, 50), 3) == "<@&7>: per day 3"


# ---- admission: a ceiling lowered later holds for what was stored before ----------------------


def job(user: int = ALICE, **changes: object) -> JobRequest:
    base = JobRequest(GUILD, CHANNEL, user, "a heron", ImageSize(512, 512))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def images_admitted(svc: AdmissionService, tries: int, **changes: object) -> int:
    admitted = 0
    for _ in range(tries):
        admission = await svc.admit(job(**changes))
        if admission.job_id is None:
            break
        await svc.finish(admission.job_id, JobStatus.SUCCEEDED)
        admitted += 1
    return admitted


async def test_older_settings_above_a_lowered_ceiling_are_held_to_it_at_admission(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    patron, staff = 700, 800
    before = guild_admin(database, utc_clock, HostCeilings())  # no ceilings yet
    await before.set_limit(GUILD, MOD, LimitName.USER_DAILY, 0)  # unlimited
    await before.set_limit(GUILD, MOD, LimitName.GUILD_DAILY, 1000)
    await before.set_role(GUILD, MOD, patron, RoleLimitsInput(daily=500))
    await before.add_exempt(GUILD, MOD, staff)

    # The host lowers the ceilings (a restart with new settings): the stored values stay.
    repositories = Repositories.over(database, utc_clock)
    lowered = HostCeilings(user_daily=3, guild_daily=5)
    svc = AdmissionService(repositories, open_policy(lowered), clock=utc_clock)
    assert await images_admitted(svc, 10) == 3
    refused = await svc.admit(job())
    assert refused.refusal is not None and refused.refusal.reason is RefusalReason.USER_DAILY
    assert refused.refusal.limit == 3
    assert await images_admitted(svc, 10, user=ALICE + 1, role_ids=(patron,)) == 2  # guild: 5
    full = await svc.admit(job(user=ALICE + 2, role_ids=(staff,)))
    assert full.refusal is not None and full.refusal.reason is RefusalReason.GUILD_DAILY
    status = await svc.quota_status(GUILD, ALICE + 3, (staff,))
    assert status.exempt and status.limits.daily == 3


async def test_a_spend_ceiling_holds_over_an_older_higher_cap(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    await guild_admin(database, utc_clock, HostCeilings()).set_limit(
        GUILD, MOD, LimitName.GUILD_SPEND_USD, 100
    )
    svc = AdmissionService(
        Repositories.over(database, utc_clock),
        open_policy(HostCeilings(guild_daily_spend_usd=0.05)),
        clock=utc_clock,
    )
    admitted = [await svc.admit(job(user=ALICE + n)) for n in range(3)]
    assert [a.allowed for a in admitted] == [True, True, False]  # 2 × $0.02 ≤ $0.05 < 3 ×
    assert admitted[2].refusal is not None
    assert admitted[2].refusal.reason is RefusalReason.GUILD_SPEND_USD


async def test_the_user_installed_apps_cap_is_held_to_the_ceiling(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = AdmissionService(
        Repositories.over(database, utc_clock), open_policy(HostCeilings(user_daily=2)),
        clock=utc_clock, user_installs=UserInstallRules(daily_cap=10),
    )
    assert await images_admitted(svc, 5, install=Install.USER, guild_id=None) == 2
