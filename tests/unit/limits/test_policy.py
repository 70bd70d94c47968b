"""Pure limit policy: windows, UTC-midnight resets, roles, exemptions, 0 = unlimited, spend."""

from __future__ import annotations

import datetime as dt

from bot.config import Settings
from bot.limits.names import RefusalReason
from bot.limits.policy import (
    GuildLimits,
    LimitOverrides,
    LimitPolicy,
    MemberLimits,
    Refusal,
    RoleLimits,
    UserLimits,
    evaluate,
    most_generous,
    next_utc_midnight,
    quota_status,
    start_of_utc_month,
)
from bot.usage import Usage

NOW = dt.datetime(2025, 3, 14, 23, 50, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=10)


def policy(
    per_window: int = 5,
    concurrent: int = 2,
    daily: int = 25,
    *,
    guild_concurrent: int = 0,
    guild_daily: int = 0,
    guild_spend: float = 0.0,
    bot_spend: float = 0.0,
    price: float = 0.02,
) -> LimitPolicy:
    return LimitPolicy(
        user=UserLimits(per_window, WINDOW, concurrent, daily),
        guild=GuildLimits(guild_concurrent, guild_daily, guild_spend),
        bot_daily_spend_usd=bot_spend,
        price_per_image_usd=price,
    )


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


def refused(limits: MemberLimits, usage: Usage) -> Refusal:
    refusal = evaluate(limits, usage, NOW)
    assert refusal is not None
    return refusal


def test_defaults_come_from_settings() -> None:
    p = LimitPolicy.from_settings(Settings())
    assert p.user == UserLimits(5, dt.timedelta(minutes=10), 2, 25)
    assert p.guild == GuildLimits(0, 0, 0.0)
    assert p.bot_daily_spend_usd == 0.0 and p.price_per_image_usd == 0.02


def test_window_refuses_the_sixth_and_says_when_a_slot_frees() -> None:
    limits = policy().for_member((), {})
    starts = [ago(9), ago(7), ago(5), ago(3), ago(1)]
    assert evaluate(limits, Usage(window_starts=starts[1:], user_today=4), NOW) is None
    decision = refused(limits, Usage(window_starts=starts, user_today=5))
    assert decision.reason is RefusalReason.PER_WINDOW
    assert decision.retry_at == ago(9) + WINDOW  # the oldest start leaves the window
    assert (decision.limit, decision.window) == (5, WINDOW)  # worded in test_refusals.py


def test_window_over_the_limit_waits_for_enough_starts_to_expire() -> None:
    # A role change lowered the limit to 2 while 4 jobs are in the window: 3 must expire.
    limits = policy(per_window=2).for_member((), {})
    starts = [ago(8), ago(6), ago(4), ago(2)]
    decision = refused(limits, Usage(window_starts=starts))
    assert decision.retry_at == ago(4) + WINDOW


def test_daily_quota_resets_at_utc_midnight() -> None:
    limits = policy(daily=3).for_member((), {})
    decision = refused(limits, Usage(user_today=3))
    assert decision.reason is RefusalReason.USER_DAILY
    assert decision.retry_at == dt.datetime(2025, 3, 15, tzinfo=dt.UTC)
    assert decision.limit == 3  # worded in test_refusals.py


def test_midnight_is_utc_whatever_the_clock_zone() -> None:
    tokyo = dt.timezone(dt.timedelta(hours=9))
    local = dt.datetime(2025, 3, 15, 8, 50, tzinfo=tokyo)  # 23:50 UTC on the 14th
    assert next_utc_midnight(local) == dt.datetime(2025, 3, 15, tzinfo=dt.UTC)
    assert start_of_utc_month(local) == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def test_concurrency_has_no_retry_time() -> None:
    limits = policy(concurrent=2).for_member((), {})
    decision = refused(limits, Usage(user_active=2))
    assert decision.reason is RefusalReason.USER_CONCURRENT and decision.retry_at is None
    assert (decision.limit, decision.in_progress) == (2, 2)
    assert evaluate(limits, Usage(user_active=1), NOW) is None


def test_zero_means_unlimited_everywhere() -> None:
    limits = policy(per_window=0, concurrent=0, daily=0).for_member((), {})
    busy = Usage(
        window_starts=[ago(1)] * 500,
        user_today=10_000,
        user_active=300,
        guild_active=999,
        guild_today=10_000,
    )
    assert evaluate(limits, busy, NOW) is None


def test_the_longest_lasting_refusal_is_reported() -> None:
    limits = policy(per_window=1, concurrent=1, daily=1).for_member((), {})
    decision = refused(limits, Usage([ago(1)], user_today=1, user_active=1))
    assert decision.reason is RefusalReason.USER_DAILY


def test_guild_limits_apply_to_everyone_including_exempt_members() -> None:
    p = policy(guild_concurrent=3, guild_daily=10)
    exempt = p.for_member([7], {}, exempt_role_ids=[7])
    assert exempt.exempt
    assert evaluate(exempt, Usage(user_today=500, user_active=50), NOW) is None
    assert refused(exempt, Usage(guild_today=10)).reason is RefusalReason.GUILD_DAILY
    assert refused(exempt, Usage(guild_active=3)).reason is RefusalReason.GUILD_CONCURRENT


def test_guild_overrides_replace_only_what_they_set() -> None:
    p = policy().for_guild(LimitOverrides(daily=100, window_minutes=60, guild_daily=0))
    assert p.user == UserLimits(5, dt.timedelta(hours=1), 2, 100)
    assert p.guild.daily == 0
    decision = refused(p.for_member((), {}), Usage([ago(1)] * 5))
    # Worded "5 images every 1 hour" (test_refusals.py).
    assert (decision.limit, decision.window) == (5, dt.timedelta(hours=1))


def test_most_generous_role_wins_per_limit_and_zero_is_most_generous() -> None:
    assert most_generous([3, 10, 5]) == 10
    assert most_generous([3, 0, 5]) == 0
    assert most_generous([]) is None
    roles = {
        1: RoleLimits(per_window=10, daily=5),
        2: RoleLimits(per_window=3, daily=50),
        3: RoleLimits(concurrent=0),
    }
    member = policy().for_member([1, 2, 3, 99], roles)
    assert member.user == UserLimits(10, WINDOW, 0, 50)
    assert not member.exempt


def test_a_role_can_be_stricter_than_the_default() -> None:
    member = policy(daily=25).for_member([4], {4: RoleLimits(daily=2)})
    assert member.user.daily == 2
    assert policy(daily=25).for_member([5], {4: RoleLimits(daily=2)}).user.daily == 25


def test_spend_cap_is_never_exceeded() -> None:
    limits = policy(guild_spend=1.00, price=0.03).for_member((), {})
    assert evaluate(limits, Usage(guild_spent_today_microusd=960_000), NOW) is None  # 0.99
    decision = refused(limits, Usage(guild_spent_today_microusd=990_000))  # 1.02 > 1
    assert decision.reason is RefusalReason.GUILD_SPEND_USD
    assert decision.retry_at == dt.datetime(2025, 3, 15, tzinfo=dt.UTC)


def test_bot_spend_cap_comes_first_and_zero_means_none() -> None:
    capped = policy(bot_spend=5.0).for_member([1], {}, exempt_role_ids=[1])
    decision = refused(capped, Usage(bot_spent_today_microusd=5_000_000))
    assert decision.reason is RefusalReason.BOT_SPEND
    uncapped = policy().for_member((), {})
    assert evaluate(uncapped, Usage(bot_spent_today_microusd=10**12), NOW) is None


def test_quota_status_reports_remaining_and_resets() -> None:
    limits = policy(per_window=5, concurrent=2, daily=25).for_member((), {})
    status = quota_status(limits, Usage([ago(8), ago(2)], user_today=7, user_active=1), NOW)
    assert (status.window_used, status.window_remaining) == (2, 3)
    assert status.window_frees_at == ago(8) + WINDOW
    assert (status.daily_used, status.daily_remaining) == (7, 18)
    assert status.daily_resets_at == dt.datetime(2025, 3, 15, tzinfo=dt.UTC)
    assert status.concurrent_remaining == 1
    assert status.next_request is None


def test_quota_status_for_exempt_member_is_unlimited() -> None:
    limits = policy().for_member([1], {}, exempt_role_ids={1})
    status = quota_status(limits, Usage(user_today=80), NOW)
    assert status.exempt
    assert status.daily_remaining is None and status.window_remaining is None
