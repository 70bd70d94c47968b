"""What moderators change with `/imagine-admin`: limits, roles, words, channels, bans, resets.

`GuildAdmin` puts validation and an audit line in front of the repositories that admission
reads. Every change is logged on the `bot.limits.admin` logger with the guild, who made it (user
id) and what changed (before → after). It is Discord-free: the cog passes ids and plain values
and turns the results into cards (`bot.wording.admin_presentation`); input it can't apply
raises `AdminInputError` with a problem code and its figures, which the edge words
(`bot.wording.refusals.admin_error_text`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bot.clock import WallClock, utc_now
from bot.limits.admission import guild_policy
from bot.limits.blocked_terms import InvalidTermError, TermProblem, normalize_term
from bot.limits.names import LimitName
from bot.limits.policy import (
    NO_CEILINGS,
    HostCeilings,
    LimitPolicy,
    start_of_utc_day,
    start_of_utc_month,
    within_ceiling,
)
from bot.storage.repositories.guild_settings import GuildConfig, NsfwPolicy
from bot.storage.repositories.ledger import DailyUsage, HistoryPage
from bot.storage.repositories.moderation import Ban
from bot.storage.repositories.roles import RoleOverride
from bot.storage.repository_set import Repositories
from bot.usage import MICRO

log = logging.getLogger(__name__)

MAX_COUNT: Final = 100_000  # images; anything above is a typo, and 0 already means unlimited
MAX_WINDOW_MINUTES: Final = 7 * 24 * 60
MAX_SPEND_USD: Final = 100_000.0
# Moderators set spend in cents; a positive amount below one would round to 0, "no cap".
SMALLEST_SPEND_USD: Final = 0.01
MAX_BLOCKED_TERMS: Final = 500  # per guild; each admission scans them all
MAX_ALLOWED_CHANNELS: Final = 100
HISTORY_PAGE_SIZE: Final = 8
TOP_USERS: Final = 5
CHART_DAYS: Final = 30
CHART_TOP_MEMBERS: Final = 8


class AdminProblem(enum.StrEnum):
    LIMIT_OUT_OF_RANGE = "limit_out_of_range"  # `limit`, `maximum`
    NOT_A_WHOLE_NUMBER = "not_a_whole_number"  # `limit`
    WINDOW_TOO_SHORT = "window_too_short"
    NO_ROLE_LIMIT_GIVEN = "no_role_limit_given"
    ROLE_LIMIT_OUT_OF_RANGE = "role_limit_out_of_range"  # `role_limit` (a field name), `maximum`
    TERM_NOT_BLOCKABLE = "term_not_blockable"  # `term_problem`
    TOO_MANY_TERMS = "too_many_terms"  # `maximum`
    TOO_MANY_CHANNELS = "too_many_channels"  # `maximum`
    SPEND_BELOW_A_CENT = "spend_below_a_cent"  # `limit`, `minimum`
    ABOVE_HOST_CEILING = "above_host_ceiling"  # `limit` (a role's: also `role_limit`), `maximum`


class AdminInputError(ValueError):
    """A moderator's input that can't be applied: what is wrong (`problem`) and its figures."""

    def __init__(
        self,
        problem: AdminProblem,
        *,
        limit: LimitName | None = None,
        role_limit: str | None = None,
        maximum: float = 0,
        minimum: float = 0,
        term_problem: TermProblem | None = None,
    ) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.limit = limit
        self.role_limit = role_limit
        self.maximum = maximum
        self.minimum = minimum
        self.term_problem = term_problem


class Unit(enum.Enum):
    IMAGES = "images"
    JOBS = "jobs"
    MINUTES = "minutes"
    USD = "usd"


@dataclass(frozen=True)
class LimitSpec:
    name: LimitName
    config_field: str  # the `GuildConfig` attribute that overrides it
    unit: Unit
    maximum: float


LIMITS: Final[Mapping[LimitName, LimitSpec]] = {
    spec.name: spec
    for spec in (
        LimitSpec(LimitName.PER_WINDOW, "user_generations_per_window", Unit.IMAGES, MAX_COUNT),
        LimitSpec(
            LimitName.WINDOW_MINUTES, "user_window_minutes", Unit.MINUTES, MAX_WINDOW_MINUTES
        ),
        LimitSpec(LimitName.USER_CONCURRENT, "user_max_concurrent_jobs", Unit.JOBS, MAX_COUNT),
        LimitSpec(LimitName.USER_DAILY, "user_daily_quota", Unit.IMAGES, MAX_COUNT),
        LimitSpec(LimitName.GUILD_CONCURRENT, "guild_max_concurrent_jobs", Unit.JOBS, MAX_COUNT),
        LimitSpec(LimitName.GUILD_DAILY, "guild_daily_cap", Unit.IMAGES, MAX_COUNT),
        LimitSpec(LimitName.GUILD_SPEND_USD, "guild_daily_spend_cap_usd", Unit.USD, MAX_SPEND_USD),
    )
}

LimitValue = int | float


def policy_value(policy: LimitPolicy, name: LimitName) -> LimitValue:
    """The value of one limit in a policy (the bot defaults, or a guild's effective policy)."""
    values: dict[LimitName, LimitValue] = {
        LimitName.PER_WINDOW: policy.user.per_window,
        LimitName.WINDOW_MINUTES: int(policy.user.window.total_seconds() // 60),
        LimitName.USER_CONCURRENT: policy.user.concurrent,
        LimitName.USER_DAILY: policy.user.daily,
        LimitName.GUILD_CONCURRENT: policy.guild.concurrent,
        LimitName.GUILD_DAILY: policy.guild.daily,
        LimitName.GUILD_SPEND_USD: policy.guild.daily_spend_usd,
    }
    return values[name]


def parse_limit_value(name: LimitName, value: float) -> LimitValue:
    """Check a moderator's number for this limit; whole numbers for counts, cents for USD.

    A positive spend cap never rounds to 0 ("no cap"): below a cent it is refused.
    """
    spec = LIMITS[name]
    if value != value or value < 0 or value > spec.maximum:  # `value != value`: NaN
        raise AdminInputError(AdminProblem.LIMIT_OUT_OF_RANGE, limit=name, maximum=spec.maximum)
    if spec.unit is Unit.USD:
        if 0 < value < SMALLEST_SPEND_USD:
            raise AdminInputError(
                AdminProblem.SPEND_BELOW_A_CENT, limit=name, minimum=SMALLEST_SPEND_USD
            )
        return round(value, 2)
    if value != int(value):
        raise AdminInputError(AdminProblem.NOT_A_WHOLE_NUMBER, limit=name)
    if spec.unit is Unit.MINUTES and value < 1:
        raise AdminInputError(AdminProblem.WINDOW_TOO_SHORT, limit=name)
    return int(value)


def ceiling_of(ceilings: HostCeilings, name: LimitName) -> LimitValue:
    """The host's ceiling over this limit (0: none; most limits have none)."""
    values: dict[LimitName, LimitValue] = {
        LimitName.USER_DAILY: ceilings.user_daily,
        LimitName.GUILD_DAILY: ceilings.guild_daily,
        LimitName.GUILD_SPEND_USD: ceilings.guild_daily_spend_usd,
    }
    return values.get(name, 0)


def check_ceiling(
    ceilings: HostCeilings, name: LimitName, value: LimitValue, role_limit: str | None = None
) -> None:
    """Refuse a value above the host's ceiling; unlimited (0) is above any ceiling too."""
    ceiling = ceiling_of(ceilings, name)
    if ceiling and (value == 0 or value > ceiling):
        raise AdminInputError(
            AdminProblem.ABOVE_HOST_CEILING, limit=name, role_limit=role_limit, maximum=ceiling
        )


@dataclass(frozen=True)
class EffectiveLimit:
    name: LimitName
    value: LimitValue  # in force: the server's value or the default, held to the ceiling
    default: LimitValue  # the bot-wide default, held to the ceiling too
    overridden: bool  # True: the server set it; False: the bot-wide default applies
    ceiling: LimitValue = 0  # the host's ceiling over it (0: none)

    @property
    def spec(self) -> LimitSpec:
        return LIMITS[self.name]


def effective_limits(defaults: LimitPolicy, config: GuildConfig) -> list[EffectiveLimit]:
    """Each limit as admission applies it here (`guild_policy` holds the same ceilings)."""
    limits = []
    for name, spec in LIMITS.items():
        default = policy_value(defaults, name)  # the defaults are held to the ceilings already
        override: LimitValue | None = getattr(config, spec.config_field)
        ceiling = ceiling_of(defaults.ceilings, name)
        value = default if override is None else within_ceiling(override, ceiling)
        limits.append(EffectiveLimit(name, value, default, override is not None, ceiling))
    return limits


@dataclass(frozen=True)
class LimitChange:
    before: EffectiveLimit
    after: EffectiveLimit


@dataclass(frozen=True)
class SettingsSnapshot:
    """Everything `/imagine-admin show` displays, read at one moment."""

    guild_id: int
    limits: list[EffectiveLimit]
    nsfw_policy: NsfwPolicy
    role_overrides: list[RoleOverride]
    exempt_roles: frozenset[int]
    blocked_terms: list[str]
    allowed_channels: frozenset[int]
    bans: list[Ban]
    bot_daily_spend_usd: float
    price_per_image_usd: float


@dataclass(frozen=True)
class SpendReport:
    today_usd: float
    month_usd: float
    daily_cap_usd: float  # 0 = no cap


@dataclass(frozen=True)
class UsageReport:
    """`/imagine-admin usage`: today's images and top members, estimated spend (UTC days)."""

    images_today: int
    jobs_today: int
    failed_today: int
    members_today: int
    top_users: list[tuple[int, int]]  # (user id, images), most first
    spend: SpendReport
    price_per_image_usd: float


@dataclass(frozen=True)
class UsageHistory:
    """`/imagine-admin usage`'s chart: the last days by outcome and spend, this month's top."""

    days: list[DailyUsage]  # oldest first, one per UTC day, today last
    daily_cap_usd: float  # the server's spend cap now (0 = no cap)
    month_start: dt.datetime
    top_members_month: list[tuple[int, int]]  # (user id, images), most first


@dataclass(frozen=True)
class RoleLimitsInput:
    """A role override as typed: None leaves that limit at the server's value."""

    per_window: int | None = None
    concurrent: int | None = None
    daily: int | None = None


def parse_role_limits(
    values: RoleLimitsInput, ceilings: HostCeilings = NO_CEILINGS
) -> RoleLimitsInput:
    given = dataclasses.asdict(values)
    if all(v is None for v in given.values()):
        raise AdminInputError(AdminProblem.NO_ROLE_LIMIT_GIVEN)
    for key, value in given.items():
        if value is not None and not 0 <= value <= MAX_COUNT:
            raise AdminInputError(
                AdminProblem.ROLE_LIMIT_OUT_OF_RANGE, role_limit=key, maximum=MAX_COUNT
            )
    if values.daily is not None:
        check_ceiling(ceilings, LimitName.USER_DAILY, values.daily, role_limit="daily")
    return values


class GuildAdmin:
    """Moderator operations for one bot; every method takes the guild and the acting user."""

    def __init__(
        self, repositories: Repositories, defaults: LimitPolicy, *, clock: WallClock = utc_now
    ) -> None:
        self.defaults = defaults  # the bot-wide limits that guild overrides replace
        self._clock = clock
        self._guild_settings = repositories.guild_settings
        self._moderation = repositories.moderation
        self._roles = repositories.roles
        self._ledger = repositories.ledger

    # --- reading ---------------------------------------------------------------------------
    async def guild_config(self, guild_id: int) -> GuildConfig:
        """The guild's own settings as stored (None: the bot-wide default applies)."""
        return await self._guild_settings.get(guild_id)

    async def snapshot(self, guild_id: int) -> SettingsSnapshot:
        config = await self._guild_settings.get(guild_id)
        return SettingsSnapshot(
            guild_id=guild_id,
            limits=effective_limits(self.defaults, config),
            nsfw_policy=config.nsfw_policy,
            role_overrides=await self._roles.list(guild_id),
            exempt_roles=await self._roles.exempt_roles(guild_id),
            blocked_terms=await self._moderation.blocked_terms(guild_id),
            allowed_channels=await self._moderation.allowed_channels(guild_id),
            bans=await self._moderation.bans(guild_id),
            bot_daily_spend_usd=self.defaults.bot_daily_spend_usd,
            price_per_image_usd=self.defaults.price_per_image_usd,
        )

    async def spend_report(self, guild_id: int | None = None) -> SpendReport:
        """Estimated spend today and this month (UTC), for one guild or the whole bot."""
        now = self._clock()
        today = await self._ledger.spent_microusd(start_of_utc_day(now), guild_id)
        month = await self._ledger.spent_microusd(start_of_utc_month(now), guild_id)
        if guild_id is None:
            cap = self.defaults.bot_daily_spend_usd
        else:
            cap = (await self._policy_for(guild_id)).guild.daily_spend_usd
        return SpendReport(today / MICRO, month / MICRO, cap)

    async def usage(self, guild_id: int) -> UsageReport:
        ledger = self._ledger
        today = start_of_utc_day(self._clock())
        summary = await ledger.summary(today, guild_id)
        return UsageReport(
            images_today=summary.images,
            jobs_today=summary.jobs,
            failed_today=summary.failed,
            members_today=summary.users,
            top_users=await ledger.top_users(today, guild_id, TOP_USERS),
            spend=await self.spend_report(guild_id),
            price_per_image_usd=self.defaults.price_per_image_usd,
        )

    async def usage_history(self, guild_id: int, days: int = CHART_DAYS) -> UsageHistory:
        now = self._clock()
        month = start_of_utc_month(now)
        first_day = start_of_utc_day(now) - dt.timedelta(days=days - 1)
        return UsageHistory(
            days=await self._ledger.daily_usage(first_day, days, guild_id),
            daily_cap_usd=(await self._policy_for(guild_id)).guild.daily_spend_usd,
            month_start=month,
            top_members_month=await self._ledger.top_users(month, guild_id, CHART_TOP_MEMBERS),
        )

    async def history(
        self, guild_id: int, *, user_id: int | None = None, page: int = 1
    ) -> HistoryPage:
        """One page (1-based) of who prompted what, newest first."""
        page = max(1, page)
        return await self._ledger.history(
            guild_id,
            user_id=user_id,
            offset=(page - 1) * HISTORY_PAGE_SIZE,
            limit=HISTORY_PAGE_SIZE,
        )

    # --- limits ----------------------------------------------------------------------------
    async def set_limit(
        self, guild_id: int, actor_id: int, name: LimitName, value: float
    ) -> LimitChange:
        parsed = parse_limit_value(name, value)
        check_ceiling(self.defaults.ceilings, name, parsed)
        changes = await self._change_limits(guild_id, actor_id, {name: parsed})
        return changes[0]

    async def reset_limit(
        self, guild_id: int, actor_id: int, name: LimitName | None
    ) -> list[LimitChange]:
        """Back to the bot-wide default: one limit, or every limit when `name` is None."""
        names = list(LIMITS) if name is None else [name]
        return await self._change_limits(guild_id, actor_id, dict.fromkeys(names))

    async def _change_limits(
        self, guild_id: int, actor_id: int, values: Mapping[LimitName, LimitValue | None]
    ) -> list[LimitChange]:
        """Read-modify-write the guild's overrides; each limit that changed is logged."""
        settings = self._guild_settings
        config = await settings.get(guild_id)
        fields = {LIMITS[name].config_field: value for name, value in values.items()}
        updated = dataclasses.replace(config, **fields)  # type: ignore[arg-type]
        await settings.save(updated)
        before = {e.name: e for e in effective_limits(self.defaults, config)}
        after = {e.name: e for e in effective_limits(self.defaults, updated)}
        changes = [LimitChange(before[name], after[name]) for name in values]
        for change in changes:
            if change.before != change.after:
                _audit(
                    guild_id, actor_id, "limit %s %s → %s", change.after.name,
                    _source(change.before), _source(change.after),
                )
        return changes

    async def set_nsfw_policy(
        self, guild_id: int, actor_id: int, policy: NsfwPolicy
    ) -> NsfwPolicy:
        """Returns the previous policy."""
        settings = self._guild_settings
        config = await settings.get(guild_id)
        await settings.save(dataclasses.replace(config, nsfw_policy=policy))
        _audit(guild_id, actor_id, "nsfw policy %s → %s", config.nsfw_policy, policy)
        return config.nsfw_policy

    # --- roles -----------------------------------------------------------------------------
    async def set_role(
        self, guild_id: int, actor_id: int, role_id: int, values: RoleLimitsInput
    ) -> RoleOverride:
        parse_role_limits(values, self.defaults.ceilings)
        override = RoleOverride(role_id, values.per_window, values.concurrent, values.daily)
        await self._roles.set(guild_id, override)
        _audit(
            guild_id, actor_id, "role %s override per_window=%s concurrent=%s daily=%s",
            role_id, values.per_window, values.concurrent, values.daily,
        )
        return override

    async def clear_role(self, guild_id: int, actor_id: int, role_id: int) -> bool:
        removed = await self._roles.remove(guild_id, role_id)
        if removed:
            _audit(guild_id, actor_id, "role %s override cleared", role_id)
        return removed

    async def add_exempt(self, guild_id: int, actor_id: int, role_id: int) -> bool:
        added = await self._roles.add_exempt(guild_id, role_id)
        if added:
            _audit(guild_id, actor_id, "role %s exempt from member limits", role_id)
        return added

    async def remove_exempt(self, guild_id: int, actor_id: int, role_id: int) -> bool:
        removed = await self._roles.remove_exempt(guild_id, role_id)
        if removed:
            _audit(guild_id, actor_id, "role %s no longer exempt", role_id)
        return removed

    # --- blocked words ---------------------------------------------------------------------
    async def add_word(self, guild_id: int, actor_id: int, text: str) -> tuple[str, bool]:
        """The stored form of the term, and whether it is new."""
        term = _normalized(text)
        moderation = self._moderation
        if len(await moderation.blocked_terms(guild_id)) >= MAX_BLOCKED_TERMS:
            raise AdminInputError(AdminProblem.TOO_MANY_TERMS, maximum=MAX_BLOCKED_TERMS)
        added = await moderation.add_blocked_term(guild_id, term, added_by=actor_id)
        if added:
            _audit(guild_id, actor_id, "blocked word added %r", term)
        return term, added

    async def remove_word(self, guild_id: int, actor_id: int, text: str) -> tuple[str, bool]:
        term = _normalized(text)
        removed = await self._moderation.remove_blocked_term(guild_id, term)
        if removed:
            _audit(guild_id, actor_id, "blocked word removed %r", term)
        return term, removed

    async def words(self, guild_id: int) -> list[str]:
        return await self._moderation.blocked_terms(guild_id)

    # --- channels --------------------------------------------------------------------------
    async def allow_channel(self, guild_id: int, actor_id: int, channel_id: int) -> bool:
        moderation = self._moderation
        if len(await moderation.allowed_channels(guild_id)) >= MAX_ALLOWED_CHANNELS:
            raise AdminInputError(AdminProblem.TOO_MANY_CHANNELS, maximum=MAX_ALLOWED_CHANNELS)
        added = await moderation.allow_channel(guild_id, channel_id)
        if added:
            _audit(guild_id, actor_id, "channel %s allowed", channel_id)
        return added

    async def remove_channel(self, guild_id: int, actor_id: int, channel_id: int) -> bool:
        removed = await self._moderation.disallow_channel(guild_id, channel_id)
        if removed:
            _audit(guild_id, actor_id, "channel %s removed from the allow-list", channel_id)
        return removed

    async def channels(self, guild_id: int) -> frozenset[int]:
        return await self._moderation.allowed_channels(guild_id)

    # --- members ---------------------------------------------------------------------------
    async def ban(
        self, guild_id: int, actor_id: int, user_id: int, reason: str | None = None
    ) -> None:
        await self._moderation.ban(
            guild_id, user_id, reason=reason, banned_by=actor_id
        )
        _audit(guild_id, actor_id, "user %s banned from generating (reason: %r)", user_id, reason)

    async def unban(self, guild_id: int, actor_id: int, user_id: int) -> bool:
        removed = await self._moderation.unban(guild_id, user_id)
        if removed:
            _audit(guild_id, actor_id, "user %s unbanned", user_id)
        return removed

    async def bans(self, guild_id: int) -> list[Ban]:
        return await self._moderation.bans(guild_id)

    async def reset_usage(self, guild_id: int, actor_id: int, user_id: int) -> int:
        """Waive the member's jobs today and in their current window; returns how many."""
        now = self._clock()
        policy = await self._policy_for(guild_id)
        since = min(start_of_utc_day(now), now - policy.user.window)
        waived = await self._ledger.waive(guild_id, user_id, since)
        _audit(guild_id, actor_id, "user %s usage reset (%s jobs waived)", user_id, waived)
        return waived

    async def _policy_for(self, guild_id: int) -> LimitPolicy:
        return guild_policy(self.defaults, await self._guild_settings.get(guild_id))


def _source(limit: EffectiveLimit) -> str:
    return f"{limit.value}{'' if limit.overridden else ' (default)'}"


def _normalized(text: str) -> str:
    try:
        return normalize_term(text)
    except InvalidTermError as exc:
        raise AdminInputError(
            AdminProblem.TERM_NOT_BLOCKABLE, term_problem=exc.problem
        ) from exc


def _audit(guild_id: int, actor_id: int, what: str, *args: object) -> None:
    log.info("guild %s: user %s changed " + what, guild_id, actor_id, *args)

