"""What `/imagine-admin` and `/imagine-quota` show: cards and reply lines. Pure functions.

Everything here is shown ephemerally and sent with no allowed mentions, so `<@id>`, `<@&id>`
and `<#id>` render as names without pinging anyone. User text (prompts, blocked words, ban
reasons) is escaped and truncated so a reply always fits Discord's embed limits. The command
choices are (label, value) pairs; the cog makes Discord choices of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from bot.jobs.model import JobStatus
from bot.limits.admin import (
    LIMITS,
    EffectiveLimit,
    LimitChange,
    RoleLimitsInput,
    SettingsSnapshot,
    UsageHistory,
    UsageReport,
)
from bot.limits.names import LimitName
from bot.limits.policy import QuotaStatus, within_ceiling
from bot.storage.repositories.guild_settings import NsfwPolicy
from bot.storage.repositories.ledger import HistoryPage, LedgerEntry
from bot.storage.repositories.moderation import Ban
from bot.storage.repositories.roles import RoleOverride
from bot.wording.cards import Card, Field
from bot.wording.limit_words import LIMIT_LABELS, format_limit
from bot.wording.markup import relative_time
from bot.wording.presentation import BRAND_COLOUR, NOTICE_COLOUR, format_prompt
from bot.wording.refusals import refusal_message

FIELD_LIMIT: Final = 1024
DESCRIPTION_LIMIT: Final = 4096
HISTORY_PROMPT_CHARS: Final = 180  # a page of 8 stays far below the 6,000-character embed cap

_USER_LIMITS: Final = (
    LimitName.PER_WINDOW,
    LimitName.WINDOW_MINUTES,
    LimitName.USER_CONCURRENT,
    LimitName.USER_DAILY,
)
_GUILD_LIMITS: Final = (LimitName.GUILD_CONCURRENT, LimitName.GUILD_DAILY)

_NSFW_TEXT: Final = {
    NsfwPolicy.BLOCK: "block: flagged images are withheld outside age-restricted channels",
    NsfwPolicy.SPOILER: "spoiler: flagged images are posted behind a spoiler",
}

_STATUS_ICONS: Final = {
    JobStatus.RESERVED: "⏳",
    JobStatus.SUBMITTED: "🎨",
    JobStatus.SUCCEEDED: "✅",
    JobStatus.CANCELLED: "🛑",
    JobStatus.FAILED: "❌",
    JobStatus.REFUNDED: "↩️",
}


def bounded_lines(lines: Sequence[str], limit: int = FIELD_LIMIT, empty: str = "none") -> str:
    """Join lines; if they don't fit in `limit` characters, end with "…and N more"."""
    if not lines:
        return empty
    shown: list[str] = []
    for index, line in enumerate(lines):
        left_after = len(lines) - index - 1
        tail_after = f"\n…and {left_after} more" if left_after else ""
        if len("\n".join([*shown, line])) + len(tail_after) > limit:
            return "\n".join([*shown, f"…and {len(lines) - index} more"])
        shown.append(line)
    return "\n".join(shown)


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def escape(text: str, limit: int) -> str:
    return format_prompt(text, limit=limit)


# ---- settings ---------------------------------------------------------------------------------


def _limit_line(limit: EffectiveLimit) -> str:
    value = format_limit(limit.name, limit.value)
    source = (
        f"server (default {format_limit(limit.name, limit.default)})"
        if limit.overridden
        else "default"
    )
    ceiling = (
        f" · at most {format_limit(limit.name, limit.ceiling)} on this bot (set by its host)"
        if limit.ceiling
        else ""
    )
    return f"{LIMIT_LABELS[limit.name]}: **{value}** · {source}{ceiling}"


def role_override_line(override: RoleOverride, daily_ceiling: int = 0) -> str:
    """What the role gives, as admission applies it (its daily quota held to the host's
    ceiling, `daily_ceiling`; 0: none)."""
    daily = override.daily_quota
    parts = []
    for name, value in (
        (LimitName.PER_WINDOW, override.generations_per_window),
        (LimitName.USER_CONCURRENT, override.max_concurrent_jobs),
        (LimitName.USER_DAILY, None if daily is None else within_ceiling(daily, daily_ceiling)),
    ):
        if value is not None:
            parts.append(f"{_SHORT[name]} {format_limit(name, value)}")
    return f"<@&{override.role_id}>: " + (", ".join(parts) or "no changes")


_SHORT: Final = {
    LimitName.PER_WINDOW: "per window",
    LimitName.USER_CONCURRENT: "at once",
    LimitName.USER_DAILY: "per day",
}


_CEILING_NOTE: Final = (
    " This bot's host set ceilings (shown below) that no server's values, roles or exemptions "
    "go above; unlimited here means the ceiling."
)


def settings_card(snapshot: SettingsSnapshot) -> Card:
    by_name = {limit.name: limit for limit in snapshot.limits}
    bot_cap = snapshot.bot_daily_spend_usd
    spend_caps = [
        _limit_line(by_name[LimitName.GUILD_SPEND_USD]),
        f"Whole bot (set by the bot's owner): **{usd(bot_cap) if bot_cap else 'no cap'}**",
        f"Estimated price per image: {usd(snapshot.price_per_image_usd)}",
    ]
    channels = bounded_lines(
        [f"<#{c}>" for c in sorted(snapshot.allowed_channels)],
        empty="every channel (no allow-list)",
    )
    return Card(
        title="⚙️ Image settings for this server",
        description=(
            "0 means unlimited. Role overrides replace these for members with the role "
            "(the most generous role wins); exempt roles skip the member limits."
            + _CEILING_NOTE * any(limit.ceiling for limit in snapshot.limits)
        ),
        colour=BRAND_COLOUR,
        fields=(
            Field(
                "Limits for each member",
                "\n".join(_limit_line(by_name[name]) for name in _USER_LIMITS),
                inline=False,
            ),
            Field(
                "Limits for the whole server",
                "\n".join(_limit_line(by_name[name]) for name in _GUILD_LIMITS),
                inline=False,
            ),
            Field("Spend caps (estimated, per UTC day)", "\n".join(spend_caps), inline=False),
            Field(
                f"Role overrides ({len(snapshot.role_overrides)})",
                bounded_lines([
                    role_override_line(o, int(by_name[LimitName.USER_DAILY].ceiling))
                    for o in snapshot.role_overrides
                ]),
                inline=False,
            ),
            Field(
                f"Exempt roles ({len(snapshot.exempt_roles)})",
                bounded_lines([f"<@&{r}>" for r in sorted(snapshot.exempt_roles)]),
                inline=False,
            ),
            Field("Channels", channels, inline=False),
            Field("Blocked words", str(len(snapshot.blocked_terms))),
            Field("Banned members", str(len(snapshot.bans))),
            Field("NSFW images", _NSFW_TEXT[snapshot.nsfw_policy], inline=False),
        ),
    )


def limit_change_text(change: LimitChange) -> str:
    after = change.after
    value = format_limit(after.name, after.value)
    if not after.overridden:
        return f"{LIMIT_LABELS[after.name]} now follows the default: **{value}**."
    was = format_limit(after.name, change.before.value)
    return f"{LIMIT_LABELS[after.name]} is now **{value}** for this server (was {was})."


def limits_reset_text(changes: Sequence[LimitChange]) -> str:
    if len(changes) == 1:
        return limit_change_text(changes[0])
    changed = [c for c in changes if c.before.overridden]
    if not changed:
        return "Every limit already follows the default."
    names = ", ".join(LIMIT_LABELS[c.after.name] for c in changed)
    return f"Back to the defaults: {names}."


def role_set_text(role_id: int, values: RoleLimitsInput) -> str:
    override = RoleOverride(role_id, values.per_window, values.concurrent, values.daily)
    return f"Members with {role_override_line(override)} (unset limits keep the server's value)."


# ---- command choices (the labels moderators pick from, with their values) ----------------------

ALL_LIMITS: Final = "all"
LIMIT_CHOICES: Final = tuple((LIMIT_LABELS[name], str(name)) for name in LIMITS)
RESET_CHOICES: Final = (*LIMIT_CHOICES, ("Every limit", ALL_LIMITS))
NSFW_CHOICES: Final = (
    ("block: withhold flagged images", str(NsfwPolicy.BLOCK)),
    ("spoiler: post them behind a spoiler", str(NsfwPolicy.SPOILER)),
)
ROLE_LIMIT_OPTIONS: Final = {
    "role": "The role",
    "per_window": "Images per window (0 = unlimited)",
    "concurrent": "Jobs at once (0 = unlimited)",
    "daily": "Images per day (0 = unlimited)",
}


# ---- replies to changes ------------------------------------------------------------------------
# Mentions render as names and ping nobody: every admin reply is sent with no allowed mentions.

NOT_ALLOWED_HERE: Final = "You don't have permission to use this here."


def nsfw_policy_text(policy: NsfwPolicy) -> str:
    if policy is NsfwPolicy.SPOILER:
        return "Flagged images are now posted behind a spoiler."
    return "Flagged images are now withheld outside age-restricted channels."


def role_cleared_text(role_id: int, cleared: bool) -> str:
    if cleared:
        return f"<@&{role_id}> follows the server's limits again."
    return f"<@&{role_id}> had no limits of its own."


def exempt_added_text(role_id: int, added: bool) -> str:
    if added:
        return (
            f"Members with <@&{role_id}> now skip the per-member limits "
            "(server-wide limits and spend caps still apply)."
        )
    return f"<@&{role_id}> was already exempt."


def exempt_removed_text(role_id: int, removed: bool) -> str:
    return f"<@&{role_id}> is no longer exempt." if removed else f"<@&{role_id}> was not exempt."


def word_added_text(term: str, added: bool) -> str:
    shown = escape(term, 100)
    return f"Blocked `{shown}`." if added else f"`{shown}` was already blocked."


def word_removed_text(term: str, removed: bool) -> str:
    shown = escape(term, 100)
    return f"Unblocked `{shown}`." if removed else f"`{shown}` was not blocked."


def channel_allowed_text(channel_id: int, added: bool) -> str:
    if added:
        return f"/imagine works in <#{channel_id}> (and other listed channels)."
    return f"<#{channel_id}> was already allowed."


def channel_removed_text(channel_id: int, removed: bool, still_listed: int) -> str:
    if not removed:
        return f"<#{channel_id}> was not on the allow-list."
    if still_listed:
        return f"/imagine no longer works in <#{channel_id}>."
    return "The allow-list is empty: /imagine works in every channel again."


def banned_text(user_id: int) -> str:
    return f"<@{user_id}> can no longer make images in this server."


def unbanned_text(user_id: int, was_banned: bool) -> str:
    return f"<@{user_id}> can make images again." if was_banned else f"<@{user_id}> was not banned."


def usage_reset_text(user_id: int, waived: int) -> str:
    return (
        f"Reset <@{user_id}>: {waived} image{'' if waived == 1 else 's'} no longer "
        "count against their limits (they still count as spend)."
    )


# ---- lists ------------------------------------------------------------------------------------


def list_card(title: str, lines: Sequence[str], empty: str) -> Card:
    return Card(
        title=title,
        description=bounded_lines(lines, DESCRIPTION_LIMIT, empty=empty),
        colour=BRAND_COLOUR,
    )


def roles_card(
    overrides: Sequence[RoleOverride], exempt: Iterable[int], daily_ceiling: int = 0
) -> Card:
    return list_card(
        "Role overrides",
        [role_override_line(o, daily_ceiling) for o in overrides],
        "No role overrides: everyone gets the server's limits.",
    ).with_fields(
        Field("Exempt roles", bounded_lines([f"<@&{r}>" for r in sorted(exempt)]), inline=False)
    )


def words_card(terms: Sequence[str]) -> Card:
    return list_card(
        f"Blocked words ({len(terms)})",
        [f"`{t.replace('`', 'ˋ')}`" for t in terms],
        "No blocked words.",
    )


def channels_card(channel_ids: Iterable[int]) -> Card:
    return list_card(
        "Channels where /imagine works",
        [f"<#{c}>" for c in sorted(channel_ids)],
        "Every channel (the allow-list is empty).",
    )


def bans_card(bans: Sequence[Ban]) -> Card:
    lines = []
    for ban in bans:
        reason = f" — {escape(ban.reason, 100)}" if ban.reason else ""
        by = f" by <@{ban.banned_by}>" if ban.banned_by else ""
        lines.append(f"<@{ban.user_id}>{by} {relative_time(ban.created_at)}{reason}")
    return list_card(f"Banned from /imagine ({len(bans)})", lines, "Nobody is banned.")


# ---- usage and history ------------------------------------------------------------------------


def usage_card(report: UsageReport) -> Card:
    spend = report.spend
    cap = f" of {usd(spend.daily_cap_usd)} cap" if spend.daily_cap_usd else ""
    top = [
        f"{rank}. <@{user}> — {images:,} image{'' if images == 1 else 's'}"
        for rank, (user, images) in enumerate(report.top_users, 1)
    ]
    return Card(
        title="📊 Usage (UTC day and month)",
        colour=BRAND_COLOUR,
        fields=(
            Field("Images today", f"{report.images_today:,}"),
            Field("Members today", f"{report.members_today:,}"),
            Field("Failed today", f"{report.failed_today:,} (not counted)"),
            Field("Spend today (estimated)", usd(spend.today_usd) + cap),
            Field("Spend this month (estimated)", usd(spend.month_usd)),
            Field("Price per image", usd(report.price_per_image_usd)),
            Field("Top members today", bounded_lines(top, empty="nobody yet"), inline=False),
        ),
    )


def usage_history_fields(history: UsageHistory) -> tuple[Field, Field]:
    """The chart's figures as text, for screen readers and for when the chart can't be drawn."""
    images = sum(sum(day.images_by_status.values()) for day in history.days)
    spent = sum(day.spent_usd for day in history.days)
    cap = history.daily_cap_usd
    over = sum(1 for day in history.days if cap and day.spent_usd > cap)
    capped = ""
    if over:
        capped = f" · over the {usd(cap)} cap on {over} day{'' if over == 1 else 's'}"
    top = [
        f"{rank}. <@{user}> — {count:,} image{'' if count == 1 else 's'}"
        for rank, (user, count) in enumerate(history.top_members_month, 1)
    ]
    return (
        Field(
            f"Last {len(history.days)} days",
            f"{images:,} image{'' if images == 1 else 's'} · {usd(spent)} estimated{capped}",
            inline=False,
        ),
        Field(
            f"Top members, {history.month_start:%B %Y}",
            bounded_lines(top, empty="nobody yet"),
            inline=False,
        ),
    )


def history_line(entry: LedgerEntry) -> str:
    icon = _STATUS_ICONS.get(entry.status, "•")
    waived = " (reset)" if entry.waived else ""
    reroll = " · re-roll" if entry.reroll_of else ""
    header = (
        f"{icon} {relative_time(entry.created_at)} <@{entry.user_id}> in <#{entry.channel_id}> · "
        f"{entry.size.replace('*', '×')} · {entry.status}{waived}{reroll}"
    )
    return f"{header}\n> {escape(' '.join(entry.prompt.split()), HISTORY_PROMPT_CHARS)}"


def page_count(page: HistoryPage) -> int:
    return max(1, -(-page.total // page.limit))


def history_card(page: HistoryPage, user_id: int | None = None) -> Card:
    lines = [history_line(e) for e in page.entries]
    intro = f"Only <@{user_id}>'s images.\n\n" if user_id else ""
    number = page.offset // page.limit + 1
    return Card(
        title="🕘 Recent images",
        description=intro
        + bounded_lines(lines, DESCRIPTION_LIMIT - len(intro), empty="Nothing here yet."),
        colour=BRAND_COLOUR,
        footer=f"Page {number} of {page_count(page)} · {page.total:,} jobs, newest first",
    )


# ---- /imagine-quota ---------------------------------------------------------------------------


def _left(remaining: int | None, limit: int) -> str:
    if remaining is None:
        return "unlimited"
    return f"**{remaining}** of {limit} left"


def quota_card(status: QuotaStatus, *, banned: bool = False) -> Card:
    limits = status.limits
    window_minutes = int(limits.window.total_seconds() // 60)
    colour = NOTICE_COLOUR
    if banned:
        description = "A moderator has stopped you from making images in this server."
    elif status.next_request is None:
        colour, description = BRAND_COLOUR, "You can make an image now."
    else:
        description = refusal_message(status.next_request)

    window = _left(status.window_remaining, limits.per_window)
    if limits.per_window:
        window += f" (every {format_limit(LimitName.WINDOW_MINUTES, window_minutes)})"
        if status.window_frees_at is not None:
            window += f"\nNext one back {relative_time(status.window_frees_at)}"

    daily = _left(status.daily_remaining, limits.daily)
    if limits.daily:
        daily += f"\nResets {relative_time(status.daily_resets_at)} (00:00 UTC)"

    running = f"{status.active} running"
    if limits.concurrent:
        running += f" (at most {limits.concurrent} at once; a slot frees when one is done)"
    else:
        running += " (no limit at once)"
    return Card(
        title="🎟️ Your images",
        description=description,
        colour=colour,
        fields=(
            Field("This window", window, inline=False),
            Field("Today", daily, inline=False),
            Field("At once", running, inline=False),
        ),
        footer="One of your roles is exempt from the per-member limits." if status.exempt else None,
    )
