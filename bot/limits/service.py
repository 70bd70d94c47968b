"""Admission: may this member start an image here and now? If so, reserve it in the ledger.

`AdmissionService.admit` checks moderation (bans, channel allow-list, blocked terms) and then
every limit against the ledger, and inserts the `reserved` row in the same locked transaction,
so concurrent requests (from one process or several sharing PostgreSQL) can never overshoot a
limit. `finish` closes the row: successes count, upstream failures and refusals are refunded.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from bot.clock import Clock, utc_now
from bot.imaging import ImageSize
from bot.limits.blocked_terms import BlockedTerms
from bot.limits.policy import (
    MICRO,
    Decision,
    LimitKind,
    LimitOverrides,
    LimitPolicy,
    MemberLimits,
    QuotaStatus,
    RoleLimits,
    Usage,
    evaluate,
    quota_status,
    start_of_utc_day,
    start_of_utc_month,
)
from bot.storage.database import Database
from bot.storage.guild_settings import GuildConfig, GuildSettingsRepo
from bot.storage.ledger import LedgerStatus, NewJob, UsageLedger, UsageWindow
from bot.storage.moderation import ModerationRepo, ModerationRules
from bot.storage.roles import RoleOverrideRepo

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

# Unfinished jobs older than this are presumed lost with a crashed process and stop counting as
# "in progress" (they still count towards window and daily limits). It must exceed the longest
# queue wait plus the job deadline.
DEFAULT_ACTIVE_TTL = dt.timedelta(minutes=20)


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"  # counts
    FAILED = "failed"  # failed upstream: refunded
    CANCELLED = "cancelled"  # counts once submitted (Novita bills the task), else refunded
    REFUSED = "refused"  # stopped before submission (e.g. could not defer): refunded


_FINAL_STATUS: Mapping[Outcome, LedgerStatus] = {
    Outcome.SUCCEEDED: LedgerStatus.SUCCEEDED,
    Outcome.FAILED: LedgerStatus.FAILED,
    Outcome.CANCELLED: LedgerStatus.CANCELLED,
    Outcome.REFUSED: LedgerStatus.REFUNDED,
}


@dataclass(frozen=True)
class AdmissionRequest:
    guild_id: int  # use 0 for direct messages
    channel_id: int
    user_id: int
    prompt: str
    size: ImageSize
    role_ids: Collection[int] = ()
    # Members with Manage Server are never locked out: bans and the channel allow-list don't
    # apply to them (limits and blocked terms still do).
    is_moderator: bool = False
    parent_channel_id: int | None = None  # a thread's channel, for the allow-list
    images: int = 1
    reroll_of: int | None = None  # a re-roll is a new request that counts like any other


@dataclass(frozen=True)
class Admission:
    decision: Decision
    ticket: int | None = None  # the ledger row id, when allowed

    @property
    def allowed(self) -> bool:
        return self.decision.allowed


@dataclass(frozen=True)
class SpendReport:
    today_usd: float
    month_usd: float
    daily_cap_usd: float  # 0 = no cap


def lock_keys(guild_id: int, user_id: int, policy: LimitPolicy) -> list[str]:
    """What one admission reads-then-writes; only shared scopes that have a limit are locked."""
    keys = [f"user:{guild_id}:{user_id}"]
    guild = policy.guild
    if guild.concurrent or guild.daily or guild.daily_spend_usd:
        keys.append(f"guild:{guild_id}")
    if policy.bot_daily_spend_usd:
        keys.append("bot")
    return keys


def channel_list(channel_ids: Collection[int], shown: int = 5) -> str:
    """Channel mentions (they render as links and ping nobody), a few at most."""
    ordered = sorted(channel_ids)
    text = ", ".join(f"<#{channel_id}>" for channel_id in ordered[:shown])
    if len(ordered) > shown:
        text += f" or one of {len(ordered) - shown} more"
    return text


def check_moderation(
    request: AdmissionRequest, rules: ModerationRules
) -> Decision:
    if not request.is_moderator:
        if rules.user_banned:
            return Decision.refuse(
                LimitKind.BANNED, "you are not allowed to make images in this server"
            )
        allowed = rules.allowed_channel_ids
        if allowed and not ({request.channel_id, request.parent_channel_id} & allowed):
            return Decision.refuse(
                LimitKind.CHANNEL,
                "images can't be made in this channel; try " + channel_list(allowed),
            )
    term = BlockedTerms(rules.blocked_terms).find(request.prompt)
    if term is not None:
        return Decision.refuse(
            LimitKind.BLOCKED_TERM, "your prompt contains a blocked word", detail=term
        )
    return Decision.allow()


class AdmissionService:
    def __init__(
        self,
        db: Database,
        defaults: LimitPolicy,
        *,
        clock: Clock = utc_now,
        active_ttl: dt.timedelta = DEFAULT_ACTIVE_TTL,
    ) -> None:
        self.defaults = defaults
        self.active_ttl = active_ttl
        self._db = db
        self._clock = clock
        self.guild_settings = GuildSettingsRepo(db, clock)
        self.moderation = ModerationRepo(db, clock)
        self.roles = RoleOverrideRepo(db, clock)
        self.ledger = UsageLedger(db, clock)
        self._spend_notices: set[tuple[str, dt.date]] = set()

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, *, clock: Clock = utc_now
    ) -> AdmissionService:
        ttl = max(DEFAULT_ACTIVE_TTL, dt.timedelta(seconds=settings.job_deadline * 2))
        return cls(db, LimitPolicy.from_settings(settings), clock=clock, active_ttl=ttl)

    async def policy_for(self, guild_id: int) -> LimitPolicy:
        """The bot defaults with this guild's overrides applied."""
        return self.defaults.for_guild(_overrides(await self.guild_settings.get(guild_id)))

    async def member_limits(self, guild_id: int, role_ids: Collection[int]) -> MemberLimits:
        policy = await self.policy_for(guild_id)
        roles = await self.roles.for_member(guild_id, role_ids)
        role_limits = {
            o.role_id: RoleLimits(o.generations_per_window, o.max_concurrent_jobs, o.daily_quota)
            for o in roles.overrides
        }
        exempt = set(role_ids) if roles.exempt else set()
        return policy.for_member(role_ids, role_limits, exempt)

    async def admit(self, request: AdmissionRequest) -> Admission:
        """Refuse with a reason, or reserve a ledger row and return its ticket."""
        moderation = check_moderation(
            request, await self.moderation.rules(request.guild_id, request.user_id)
        )
        if not moderation.allowed:
            return Admission(moderation)
        limits = await self.member_limits(request.guild_id, request.role_ids)
        cost = limits.cost_microusd(request.images)
        keys = lock_keys(request.guild_id, request.user_id, limits.policy)
        async with self._db.write(keys) as conn:
            now = self._clock()
            counts = await self.ledger.counts(
                conn, request.guild_id, request.user_id, self._bounds(limits, now)
            )
            decision = evaluate(limits, Usage(**asdict(counts)), now, cost)
            if not decision.allowed:
                self._note_spend_cap(decision, request.guild_id, now)
                return Admission(decision)
            ticket = await self.ledger.insert(
                conn,
                NewJob(
                    guild_id=request.guild_id,
                    channel_id=request.channel_id,
                    user_id=request.user_id,
                    prompt=request.prompt,
                    size=request.size.wire,
                    images=request.images,
                    cost_microusd=cost,
                    reroll_of=request.reroll_of,
                ),
                now,
            )
        return Admission(decision, ticket)

    async def mark_submitted(self, ticket: int, task_id: str) -> bool:
        return await self.ledger.mark_submitted(ticket, task_id)

    async def finish(
        self,
        ticket: int,
        outcome: Outcome,
        *,
        task_id: str | None = None,
        timings: Mapping[str, float] | None = None,
        error: str | None = None,
    ) -> bool:
        """Close the job; False if it was already closed (finishing twice is harmless)."""
        return await self.ledger.finish(
            ticket, _FINAL_STATUS[outcome], task_id=task_id, timings=timings, error=error
        )

    async def quota_status(
        self, guild_id: int, user_id: int, role_ids: Collection[int] = ()
    ) -> QuotaStatus:
        """What the member has left, when it comes back, and whether they may start one now."""
        limits = await self.member_limits(guild_id, role_ids)
        async with self._db.read() as conn:
            now = self._clock()
            counts = await self.ledger.counts(conn, guild_id, user_id, self._bounds(limits, now))
        return quota_status(limits, Usage(**asdict(counts)), now)

    async def spend_report(self, guild_id: int | None = None) -> SpendReport:
        """Estimated spend today and this month (UTC), for one guild or the whole bot."""
        now = self._clock()
        today = await self.ledger.spent_microusd(start_of_utc_day(now), guild_id)
        month = await self.ledger.spent_microusd(start_of_utc_month(now), guild_id)
        if guild_id is None:
            cap = self.defaults.bot_daily_spend_usd
        else:
            cap = (await self.policy_for(guild_id)).guild.daily_spend_usd
        return SpendReport(today / MICRO, month / MICRO, cap)

    def _bounds(self, limits: MemberLimits, now: dt.datetime) -> UsageWindow:
        return UsageWindow(
            window_start=now - limits.user.window,
            day_start=start_of_utc_day(now),
            active_since=now - self.active_ttl,
        )

    def _note_spend_cap(self, decision: Decision, guild_id: int, now: dt.datetime) -> None:
        """Log once per day and scope that a spend cap started refusing jobs."""
        if decision.limit is LimitKind.BOT_SPEND:
            scope = "bot"
        elif decision.limit is LimitKind.GUILD_SPEND:
            scope = f"guild {guild_id}"
        else:
            return
        key = (scope, now.astimezone(dt.UTC).date())
        if key not in self._spend_notices:
            self._spend_notices.add(key)
            log.warning("daily spend cap reached for the %s; new jobs refused until 00:00 UTC",
                        scope)


def _overrides(config: GuildConfig) -> LimitOverrides:
    return LimitOverrides(
        per_window=config.user_generations_per_window,
        window_minutes=config.user_window_minutes,
        concurrent=config.user_max_concurrent_jobs,
        daily=config.user_daily_quota,
        guild_concurrent=config.guild_max_concurrent_jobs,
        guild_daily=config.guild_daily_cap,
        guild_daily_spend_usd=config.guild_daily_spend_cap_usd,
    )
