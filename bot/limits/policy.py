"""Who may start an image now: pure rules, no I/O, time passed in.

Vocabulary:
* A limit of 0 means unlimited (and is therefore the most generous value).
* Per-user limits count the member's jobs *in this guild*: each guild sets its own limits, so
  each guild's ledger rows are what count against them. Spend caps protect the money.
* "Today" is the UTC day: daily quotas, daily caps and daily spend reset at 00:00 UTC, the
  same instant for everyone, so `/imagine-quota` can show one exact reset time.
* The rolling window counts jobs started in the last `window` (default 10 minutes).
* The host's ceilings (`HostCeilings`) bound what any server sets: a limit above its ceiling,
  or unlimited, counts as the ceiling. They are applied wherever limits are put together (the
  bot defaults, a guild's overrides, roles, exemptions), so a ceiling lowered later also holds
  for settings stored before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, TypeVar

from bot.limits.names import RefusalReason
from bot.usage import Usage, usd_to_micro

if TYPE_CHECKING:
    from bot.config import Settings

UNLIMITED: Final = 0
Amount = TypeVar("Amount", int, float)


def start_of_utc_day(now: dt.datetime) -> dt.datetime:
    utc = now.astimezone(dt.UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def next_utc_midnight(now: dt.datetime) -> dt.datetime:
    return start_of_utc_day(now) + dt.timedelta(days=1)


def start_of_utc_month(now: dt.datetime) -> dt.datetime:
    return start_of_utc_day(now).replace(day=1)


def within_ceiling(value: Amount, ceiling: Amount) -> Amount:
    """`value` held to `ceiling` (0: no ceiling); unlimited (0) means the ceiling itself."""
    if ceiling == UNLIMITED:
        return value
    if value == UNLIMITED:
        return ceiling
    return min(value, ceiling)


def most_generous(values: Iterable[int]) -> int | None:
    """The largest limit, where 0 (unlimited) beats every number; None if there are none."""
    found: int | None = None
    for value in values:
        if value == UNLIMITED:
            return UNLIMITED
        found = value if found is None else max(found, value)
    return found


@dataclass(frozen=True)
class UserLimits:
    per_window: int
    window: dt.timedelta
    concurrent: int
    daily: int

    @classmethod
    def unlimited(cls, window: dt.timedelta = dt.timedelta(minutes=10)) -> UserLimits:
        return cls(UNLIMITED, window, UNLIMITED, UNLIMITED)


@dataclass(frozen=True)
class GuildLimits:
    concurrent: int
    daily: int
    daily_spend_usd: float  # 0 = no cap


@dataclass(frozen=True)
class HostCeilings:
    """The host's ceilings over every server's own limits (0 = no ceiling): for a bot offered to
    many servers, so no server's moderators can give its members (or itself) more."""

    user_daily: int = 0  # images per member per day
    guild_daily: int = 0  # images per server per day
    guild_daily_spend_usd: float = 0.0  # estimated spend per server per day

    @classmethod
    def from_settings(cls, settings: Settings) -> HostCeilings:
        return cls(
            user_daily=settings.max_user_daily_quota,
            guild_daily=settings.max_guild_daily_cap,
            guild_daily_spend_usd=settings.max_guild_daily_spend_cap_usd,
        )


NO_CEILINGS: Final = HostCeilings()


@dataclass(frozen=True)
class LimitOverrides:
    """A guild's own values; None keeps the bot-wide default."""

    per_window: int | None = None
    window_minutes: int | None = None
    concurrent: int | None = None
    daily: int | None = None
    guild_concurrent: int | None = None
    guild_daily: int | None = None
    guild_daily_spend_usd: float | None = None


@dataclass(frozen=True)
class RoleLimits:
    """What one role changes for its members; None leaves that limit alone.

    The window length stays the guild's: roles change how many, not how long.
    """

    per_window: int | None = None
    concurrent: int | None = None
    daily: int | None = None


@dataclass(frozen=True)
class LimitPolicy:
    """The limits in force for one guild (bot defaults with the guild's overrides applied),
    held to the host's ceilings however they were put together."""

    user: UserLimits
    guild: GuildLimits
    bot_daily_spend_usd: float = 0.0
    price_per_image_usd: float = 0.0
    ceilings: HostCeilings = NO_CEILINGS

    def __post_init__(self) -> None:
        ceilings = self.ceilings
        user = replace(self.user, daily=within_ceiling(self.user.daily, ceilings.user_daily))
        guild = GuildLimits(
            concurrent=self.guild.concurrent,
            daily=within_ceiling(self.guild.daily, ceilings.guild_daily),
            daily_spend_usd=within_ceiling(
                self.guild.daily_spend_usd, ceilings.guild_daily_spend_usd
            ),
        )
        object.__setattr__(self, "user", user)  # frozen: the held values replace the given ones
        object.__setattr__(self, "guild", guild)

    @classmethod
    def from_settings(cls, settings: Settings) -> LimitPolicy:
        return cls(
            user=UserLimits(
                per_window=settings.user_generations_per_window,
                window=dt.timedelta(minutes=settings.user_window_minutes),
                concurrent=settings.user_max_concurrent_jobs,
                daily=settings.user_daily_quota,
            ),
            guild=GuildLimits(
                concurrent=settings.guild_max_concurrent_jobs,
                daily=settings.guild_daily_cap,
                daily_spend_usd=settings.guild_daily_spend_cap_usd,
            ),
            bot_daily_spend_usd=settings.bot_daily_spend_cap_usd,
            price_per_image_usd=settings.price_per_image_usd,
            ceilings=HostCeilings.from_settings(settings),
        )

    def for_guild(self, overrides: LimitOverrides) -> LimitPolicy:
        def pick(value: int | None, default: int) -> int:
            return default if value is None else value

        user = UserLimits(
            per_window=pick(overrides.per_window, self.user.per_window),
            window=(
                self.user.window
                if overrides.window_minutes is None
                else dt.timedelta(minutes=overrides.window_minutes)
            ),
            concurrent=pick(overrides.concurrent, self.user.concurrent),
            daily=pick(overrides.daily, self.user.daily),
        )
        spend = overrides.guild_daily_spend_usd
        guild = GuildLimits(
            concurrent=pick(overrides.guild_concurrent, self.guild.concurrent),
            daily=pick(overrides.guild_daily, self.guild.daily),
            daily_spend_usd=self.guild.daily_spend_usd if spend is None else spend,
        )
        return replace(self, user=user, guild=guild)

    def for_member(
        self,
        role_ids: Collection[int],
        role_limits: Mapping[int, RoleLimits],
        exempt_role_ids: Collection[int] = (),
    ) -> MemberLimits:
        """Apply the member's roles: exempt roles lift user limits; overrides replace defaults.

        Each limit is resolved on its own: among the member's roles that set it, the most
        generous value wins; if none of them sets it, the guild's value stays.
        """
        if any(role in exempt_role_ids for role in role_ids):
            return MemberLimits(self, UserLimits.unlimited(self.user.window), exempt=True)
        mine = [role_limits[role] for role in role_ids if role in role_limits]

        def resolve(values: Iterable[int | None], default: int) -> int:
            best = most_generous(v for v in values if v is not None)
            return default if best is None else best

        user = UserLimits(
            per_window=resolve((r.per_window for r in mine), self.user.per_window),
            window=self.user.window,
            concurrent=resolve((r.concurrent for r in mine), self.user.concurrent),
            daily=resolve((r.daily for r in mine), self.user.daily),
        )
        return MemberLimits(self, user, exempt=False)


@dataclass(frozen=True)
class MemberLimits:
    """One member's limits; the daily quota is held to the host's ceiling (exempt roles, roles
    and the user-installed app's own cap included)."""

    policy: LimitPolicy
    user: UserLimits
    exempt: bool

    def __post_init__(self) -> None:
        daily = within_ceiling(self.user.daily, self.policy.ceilings.user_daily)
        object.__setattr__(self, "user", replace(self.user, daily=daily))

    def cost_microusd(self, images: int) -> int:
        return usd_to_micro(self.policy.price_per_image_usd) * images


@dataclass(frozen=True)
class Refusal:
    """Why one more job may not start: the reason (usually a limit), with the figures behind it.

    The edge words it (`bot.wording.refusals`). `retry_at` is when the refusal lifts by
    itself (None: when a running job finishes, or never). Only the fields of its reason are set.
    """

    reason: RefusalReason
    retry_at: dt.datetime | None = None
    limit: int = 0  # the count that was reached: images per day or window, or jobs at once
    window: dt.timedelta | None = None  # PER_WINDOW: how long the window is
    in_progress: int = 0  # USER_CONCURRENT, GUILD_CONCURRENT: jobs running now
    allowed_channel_ids: frozenset[int] = frozenset()  # CHANNEL: where images can be made
    blocked_term: str | None = field(default=None, compare=False)  # BLOCKED_TERM: the match


def window_frees_at(
    starts: Sequence[dt.datetime], limit: int, window: dt.timedelta
) -> dt.datetime:
    """When enough of these starts (oldest first) leave the window for one more under `limit`."""
    return starts[len(starts) - limit] + window


def _exceeds(spent: int, cost: int, cap_usd: float) -> bool:
    return cap_usd > 0 and spent + cost > usd_to_micro(cap_usd)


def evaluate(
    limits: MemberLimits, usage: Usage, now: dt.datetime, cost_microusd: int | None = None
) -> Refusal | None:
    """Why this member may not start one more job now (None: they may).

    Checks the longest-lasting refusal first.

    `cost_microusd` is the job's estimated price (default: one image at the policy's price).

    Spend caps refuse a job that would take the day's spend past the cap, so the cap is never
    exceeded. Exempt members skip the per-user limits but not the guild's or the bot's.
    """
    policy, user = limits.policy, limits.user
    midnight = next_utc_midnight(now)
    cost = limits.cost_microusd(1) if cost_microusd is None else cost_microusd
    if _exceeds(usage.bot_spent_today_microusd, cost, policy.bot_daily_spend_usd):
        return Refusal(RefusalReason.BOT_SPEND, midnight)
    if _exceeds(usage.guild_spent_today_microusd, cost, policy.guild.daily_spend_usd):
        return Refusal(RefusalReason.GUILD_SPEND_USD, midnight)
    if policy.guild.daily and usage.guild_today >= policy.guild.daily:
        return Refusal(RefusalReason.GUILD_DAILY, midnight, limit=policy.guild.daily)
    if user.daily and usage.user_today >= user.daily:
        return Refusal(RefusalReason.USER_DAILY, midnight, limit=user.daily)
    if user.per_window and len(usage.window_starts) >= user.per_window:
        return Refusal(
            RefusalReason.PER_WINDOW,
            window_frees_at(usage.window_starts, user.per_window, user.window),
            limit=user.per_window,
            window=user.window,
        )
    if policy.guild.concurrent and usage.guild_active >= policy.guild.concurrent:
        return Refusal(
            RefusalReason.GUILD_CONCURRENT,
            limit=policy.guild.concurrent,
            in_progress=usage.guild_active,
        )
    if user.concurrent and usage.user_active >= user.concurrent:
        return Refusal(
            RefusalReason.USER_CONCURRENT, limit=user.concurrent, in_progress=usage.user_active
        )
    return None


@dataclass(frozen=True)
class QuotaStatus:
    """What `/imagine-quota` shows; `None` remaining means unlimited."""

    exempt: bool
    limits: UserLimits
    window_used: int
    window_remaining: int | None
    window_frees_at: dt.datetime | None  # when the oldest counted job leaves the window
    daily_used: int
    daily_remaining: int | None
    daily_resets_at: dt.datetime
    active: int
    concurrent_remaining: int | None
    next_request: Refusal | None  # why one more image would be refused now (None: it wouldn't)
    banned: bool = False  # a moderator stopped this member (set by the admission service)


def quota_status(limits: MemberLimits, usage: Usage, now: dt.datetime) -> QuotaStatus:
    user = limits.user

    def remaining(limit: int, used: int) -> int | None:
        return None if limit == UNLIMITED else max(0, limit - used)

    used_in_window = len(usage.window_starts)
    return QuotaStatus(
        exempt=limits.exempt,
        limits=user,
        window_used=used_in_window,
        window_remaining=remaining(user.per_window, used_in_window),
        window_frees_at=usage.window_starts[0] + user.window if usage.window_starts else None,
        daily_used=usage.user_today,
        daily_remaining=remaining(user.daily, usage.user_today),
        daily_resets_at=next_utc_midnight(now),
        active=usage.user_active,
        concurrent_remaining=remaining(user.concurrent, usage.user_active),
        next_request=evaluate(limits, usage, now),
    )
