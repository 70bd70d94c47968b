"""Pure pieces behind /imagine-admin and /imagine-quota: parsing limits, and the cards."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bot.interactions.transport.embeds import to_embed
from bot.jobs.model import JobStatus
from bot.limits.admin import (
    LIMITS,
    AdminInputError,
    EffectiveLimit,
    LimitChange,
    RoleLimitsInput,
    SettingsSnapshot,
    SpendReport,
    UsageReport,
    effective_limits,
    parse_limit_value,
    parse_role_limits,
    policy_value,
)
from bot.limits.names import LimitName
from bot.limits.policy import GuildLimits, LimitPolicy, MemberLimits, UserLimits, quota_status
from bot.storage.repositories.guild_settings import GuildConfig, NsfwPolicy
from bot.storage.repositories.ledger import HistoryPage, LedgerEntry
from bot.storage.repositories.roles import RoleOverride
from bot.usage import Usage
from bot.wording.admin_presentation import (
    DESCRIPTION_LIMIT,
    FIELD_LIMIT,
    bounded_lines,
    history_card,
    limit_change_text,
    limits_reset_text,
    quota_card,
    settings_card,
    usage_card,
    words_card,
)
from bot.wording.cards import Card
from bot.wording.limit_words import LIMIT_LABELS, format_limit
from bot.wording.refusals import admin_error_text

NOW = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)
DEFAULTS = LimitPolicy(
    UserLimits(5, dt.timedelta(minutes=10), 2, 25),
    GuildLimits(0, 0, 0.0),
    bot_daily_spend_usd=10.0,
    price_per_image_usd=0.02,
)


def embed_chars(card: Card) -> int:
    """The characters Discord counts against its 6,000-character cap, of the embed it receives."""
    data = to_embed(card).to_dict()
    total = len(data.get("title", "")) + len(data.get("description", ""))
    total += len(data.get("footer", {}).get("text", ""))
    return total + sum(len(f["name"]) + len(f["value"]) for f in data.get("fields", []))


# ---- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "parsed"),
    [
        (LimitName.PER_WINDOW, 3.0, 3),
        (LimitName.USER_DAILY, 0, 0),
        (LimitName.WINDOW_MINUTES, 60, 60),
        (LimitName.GUILD_SPEND_USD, 1.234, 1.23),
    ],
)
def test_parse_limit_value_accepts(name: LimitName, value: float, parsed: float) -> None:
    assert parse_limit_value(name, value) == parsed
    assert type(parse_limit_value(name, value)) is type(parsed)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (LimitName.PER_WINDOW, 2.5, "must be a whole number"),
        (LimitName.PER_WINDOW, -1, "between 0 and"),
        (LimitName.PER_WINDOW, 1e9, "between 0 and"),
        (LimitName.WINDOW_MINUTES, 0, "at least 1 minute"),
        (LimitName.WINDOW_MINUTES, 7 * 24 * 60 + 1, "between 0 and"),
        (LimitName.GUILD_SPEND_USD, float("nan"), "between 0 and"),
    ],
)
def test_parse_limit_value_refuses(name: LimitName, value: float, message: str) -> None:
    with pytest.raises(AdminInputError) as caught:
        parse_limit_value(name, value)
    assert re.search(message, admin_error_text(caught.value))


def test_format_limit() -> None:
    assert format_limit(LimitName.PER_WINDOW, 0) == "unlimited"
    assert format_limit(LimitName.PER_WINDOW, 1500) == "1,500"
    assert format_limit(LimitName.WINDOW_MINUTES, 1) == "1 minute"
    assert format_limit(LimitName.GUILD_SPEND_USD, 0) == "no cap"
    assert format_limit(LimitName.GUILD_SPEND_USD, 2.5) == "$2.50"


def test_every_limit_maps_to_a_guild_config_field_and_a_policy_value() -> None:
    config = GuildConfig(1)
    for name, spec in LIMITS.items():
        assert hasattr(config, spec.config_field)
        assert 0 < len(LIMIT_LABELS[name]) <= 100  # a choice name
        policy_value(DEFAULTS, name)


def test_effective_limits_name_their_source() -> None:
    limits = {
        e.name: e
        for e in effective_limits(
            DEFAULTS, GuildConfig(1, user_daily_quota=3, guild_daily_spend_cap_usd=1.5)
        )
    }
    assert limits[LimitName.USER_DAILY] == EffectiveLimit(LimitName.USER_DAILY, 3, 25, True)
    assert limits[LimitName.PER_WINDOW] == EffectiveLimit(LimitName.PER_WINDOW, 5, 5, False)
    assert limits[LimitName.WINDOW_MINUTES].value == 10
    assert limits[LimitName.GUILD_SPEND_USD].value == 1.5


def test_role_limits_need_one_value_in_range() -> None:
    with pytest.raises(AdminInputError) as none_given:
        parse_role_limits(RoleLimitsInput())
    assert "at least one" in admin_error_text(none_given.value)
    with pytest.raises(AdminInputError) as out_of_range:
        parse_role_limits(RoleLimitsInput(daily=-1))
    assert "daily must be between" in admin_error_text(out_of_range.value)
    assert parse_role_limits(RoleLimitsInput(per_window=0)) == RoleLimitsInput(per_window=0)


# ---- texts and cards --------------------------------------------------------------------------


def test_bounded_lines_stops_before_the_limit_and_counts_the_rest() -> None:
    assert bounded_lines([]) == "none"
    assert bounded_lines(["a", "b"]) == "a\nb"
    lines = [f"line {n:03}" for n in range(300)]
    text = bounded_lines(lines, limit=100)
    assert len(text) <= 100
    shown = text.split("\n")
    assert shown[-1] == f"…and {300 - (len(shown) - 1)} more"
    assert bounded_lines(["x" * 50], limit=10) == "…and 1 more"


def test_limit_change_texts() -> None:
    before = EffectiveLimit(LimitName.PER_WINDOW, 5, 5, False)
    after = EffectiveLimit(LimitName.PER_WINDOW, 2, 5, True)
    assert limit_change_text(LimitChange(before, after)) == (
        "Images per window (each member) is now **2** for this server (was 5)."
    )
    assert limit_change_text(LimitChange(after, before)) == (
        "Images per window (each member) now follows the default: **5**."
    )
    other = EffectiveLimit(LimitName.USER_DAILY, 25, 25, False)
    assert limits_reset_text([LimitChange(after, before), LimitChange(other, other)]) == (
        "Back to the defaults: Images per window (each member)."
    )
    assert limits_reset_text([LimitChange(other, other)] * 2) == (
        "Every limit already follows the default."
    )


def snapshot(**changes: object) -> SettingsSnapshot:
    values: dict[str, object] = dict(
        guild_id=1,
        limits=effective_limits(DEFAULTS, GuildConfig(1, user_daily_quota=3)),
        nsfw_policy=NsfwPolicy.BLOCK,
        role_overrides=[RoleOverride(77, generations_per_window=0, daily_quota=40)],
        exempt_roles=frozenset({88}),
        blocked_terms=["dragon", "cat*"],
        allowed_channels=frozenset(),
        bans=[],
        bot_daily_spend_usd=10.0,
        price_per_image_usd=0.02,
    )
    values.update(changes)
    return SettingsSnapshot(**values)  # type: ignore[arg-type]


def test_settings_card_shows_sources_roles_and_rules() -> None:
    fields = {f.name: f.value for f in settings_card(snapshot()).fields}
    assert "Images per day (each member): **3** · server (default 25)" in fields[
        "Limits for each member"
    ]
    assert "Images per window (each member): **5** · default" in fields[
        "Limits for each member"
    ]
    assert fields["Role overrides (1)"] == "<@&77>: per window unlimited, per day 40"
    assert fields["Exempt roles (1)"] == "<@&88>"
    assert fields["Channels"] == "every channel (no allow-list)"
    assert fields["Blocked words"] == "2"
    assert "Whole bot (set by the bot's owner): **$10.00**" in fields[
        "Spend caps (estimated, per UTC day)"
    ]
    assert fields["NSFW images"].startswith("block")


def test_settings_card_stays_within_discord_limits_with_huge_lists() -> None:
    big = snapshot(
        role_overrides=[RoleOverride(10**18 + n, 1, 2, 3) for n in range(400)],
        exempt_roles=frozenset(10**18 + n for n in range(400)),
        allowed_channels=frozenset(10**18 + n for n in range(100)),
    )
    card = settings_card(big)
    assert embed_chars(card) <= 6000
    assert all(len(f.value) <= FIELD_LIMIT for f in card.fields)
    assert "more" in card.fields[3].value


def test_words_card_fits_and_defuses_backticks() -> None:
    card = words_card([f"`word{n}`" * 3 for n in range(500)])
    assert len(card.description or "") <= DESCRIPTION_LIMIT
    assert "``" not in (card.description or "").replace("`ˋ", "")


def entry(n: int, prompt: str, status: JobStatus = JobStatus.SUCCEEDED) -> LedgerEntry:
    return LedgerEntry(
        job_id=n, guild_id=1, channel_id=2, user_id=3, prompt=prompt, size="1024*1024", images=1,
        cost_microusd=20_000, status=status, waived=n == 2, reroll_of=None, task_id=None,
        error=None, timings={}, created_at=NOW, submitted_at=None, finished_at=None,
    )


def test_history_card_escapes_truncates_and_pages() -> None:
    prompts = ["@everyone **look** " + "y" * 3000, "a\nmulti-line\nprompt", "ok"]
    page = HistoryPage(
        [entry(1, prompts[0]), entry(2, prompts[1], JobStatus.FAILED), entry(3, prompts[2])],
        total=19, offset=8, limit=8,
    )
    card = history_card(page, user_id=3)
    text = card.description or ""
    assert text.startswith("Only <@3>'s images.")
    assert "@\u200beveryone \\*\\*look\\*\\*" in text
    assert "a multi-line prompt" in text  # one line per prompt
    assert "❌" in text and "failed (reset)" in text
    assert f"<t:{int(NOW.timestamp())}:R> <@3> in <#2> · 1024×1024 · succeeded" in text
    assert card.footer == "Page 2 of 3 · 19 jobs, newest first"
    assert embed_chars(card) < 6000


def test_usage_card_numbers() -> None:
    report = UsageReport(
        images_today=12, jobs_today=14, failed_today=2, members_today=3,
        top_users=[(5, 9), (6, 1)], spend=SpendReport(0.24, 3.5, 1.0), price_per_image_usd=0.02,
    )
    fields = {f.name: f.value for f in usage_card(report).fields}
    assert fields["Images today"] == "12"
    assert fields["Spend today (estimated)"] == "$0.24 of $1.00 cap"
    assert fields["Spend this month (estimated)"] == "$3.50"
    assert fields["Top members today"] == "1. <@5> — 9 images\n2. <@6> — 1 image"


def test_quota_card_remaining_and_reset_times() -> None:
    limits = MemberLimits(DEFAULTS, DEFAULTS.user, exempt=False)
    starts = (NOW - dt.timedelta(minutes=8), NOW - dt.timedelta(minutes=1))
    status = quota_status(limits, Usage(window_starts=starts, user_today=7, user_active=1), NOW)
    fields = {f.name: f.value for f in quota_card(status).fields}
    back = int((starts[0] + dt.timedelta(minutes=10)).timestamp())
    midnight = int(dt.datetime(2025, 3, 15, tzinfo=dt.UTC).timestamp())
    assert fields["This window"] == (
        f"**3** of 5 left (every 10 minutes)\nNext one back <t:{back}:R>"
    )
    assert fields["Today"] == f"**18** of 25 left\nResets <t:{midnight}:R> (00:00 UTC)"
    assert fields["At once"].startswith("1 running (at most 2 at once")

    full = quota_status(limits, Usage(user_today=25), NOW)
    card = quota_card(full)
    assert card.description == (
        f"Sorry, you have used your 25 images for today. You can try again <t:{midnight}:R>."
    )
    exempt = quota_status(MemberLimits(DEFAULTS, UserLimits.unlimited(), True), Usage(), NOW)
    card = quota_card(exempt)
    assert {f.name: f.value for f in card.fields}["This window"] == "unlimited"
    assert card.footer and "exempt" in card.footer
    assert "stopped you" in (quota_card(exempt, banned=True).description or "")
