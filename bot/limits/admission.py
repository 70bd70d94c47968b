"""Admission: may this member start an image here and now? If so, reserve it in the ledger.

One request type (`JobRequest`) goes in, one answer (`Admission`: a job id, or a `Refusal` with
its reason code and figures) comes out; the Discord edge words refusals. `admit` checks
moderation (bans, channel allow-list, blocked terms) and then every limit against the ledger,
and inserts the `reserved` row in the same locked transaction, so concurrent requests (from one
process or several sharing PostgreSQL) can never overshoot a limit. `finish` records how the
job ended: successes count, upstream failures and refusals are refunded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bot.clock import Clock, utc_now
from bot.imaging import ImageSize
from bot.limits.blocked_terms import BlockedTerms
from bot.limits.policy import (
    LimitKind,
    LimitOverrides,
    LimitPolicy,
    MemberLimits,
    QuotaStatus,
    Refusal,
    RoleLimits,
    evaluate,
    quota_status,
    start_of_utc_day,
)
from bot.storage.database import Database
from bot.storage.guild_settings import GuildConfig, GuildSettingsRepo, NsfwPolicy
from bot.storage.ledger import JobOutcome, JobStatus, LedgerEntry, UsageLedger, UsageWindow
from bot.storage.moderation import ModerationRepo, ModerationRules
from bot.storage.roles import RoleOverrideRepo

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = [
    "DEFAULT_ACTIVE_TTL",
    "DIRECT_MESSAGES",
    "Admission",
    "AdmissionService",
    "JobOutcome",
    "JobRequest",
    "JobStatus",
    "guild_policy",
    "lock_keys",
]

log = logging.getLogger(__name__)

# Unfinished jobs older than this are presumed lost with a crashed process and stop counting as
# "in progress" (they still count towards window and daily limits). It must exceed the longest
# queue wait plus the job deadline.
DEFAULT_ACTIVE_TTL = dt.timedelta(minutes=20)

DIRECT_MESSAGES: Final = 0  # the ledger's guild (and channel) id for jobs outside a server


@dataclass(frozen=True)
class JobRequest:
    """Someone asked for an image: who, where and what. Admitted, it becomes the job's request."""

    guild_id: int | None  # None: a direct message
    channel_id: int | None
    user_id: int
    prompt: str
    size: ImageSize
    user_name: str = ""  # shown on the job's messages
    role_ids: tuple[int, ...] = ()
    # Members with Manage Server are never locked out: bans and the channel allow-list don't
    # apply to them (limits and blocked terms still do).
    is_moderator: bool = False
    channel_is_nsfw: bool = False  # flagged images may be shown here as they are
    parent_channel_id: int | None = None  # a thread's channel, for the allow-list
    reroll_of: int | None = None  # the job re-rolled; a re-roll counts like any other request
    images: int = 1


@dataclass(frozen=True)
class Admission:
    """A reserved job (`job_id`), or why not (`refusal`)."""

    job_id: int | None = None
    refusal: Refusal | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def lock_keys(guild_id: int, user_id: int, policy: LimitPolicy) -> list[str]:
    """What one admission reads-then-writes; only shared scopes that have a limit are locked."""
    keys = [f"user:{guild_id}:{user_id}"]
    guild = policy.guild
    if guild.concurrent or guild.daily or guild.daily_spend_usd:
        keys.append(f"guild:{guild_id}")
    if policy.bot_daily_spend_usd:
        keys.append("bot")
    return keys


def check_moderation(request: JobRequest, rules: ModerationRules) -> Refusal | None:
    if not request.is_moderator:
        if rules.user_banned:
            return Refusal(LimitKind.BANNED)
        allowed = rules.allowed_channel_ids
        if allowed and not ({request.channel_id, request.parent_channel_id} & allowed):
            return Refusal(LimitKind.CHANNEL, allowed_channel_ids=frozenset(allowed))
    term = BlockedTerms(rules.blocked_terms).find(request.prompt)
    if term is not None:
        return Refusal(LimitKind.BLOCKED_TERM, blocked_term=term)
    return None


def guild_policy(defaults: LimitPolicy, config: GuildConfig) -> LimitPolicy:
    """The bot defaults with this guild's overrides applied."""
    return defaults.for_guild(_overrides(config))


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
        self._guild_settings = GuildSettingsRepo(db, clock)
        self._moderation = ModerationRepo(db, clock)
        self._roles = RoleOverrideRepo(db, clock)
        self._ledger = UsageLedger(db, clock)
        self._spend_notices: set[tuple[str, dt.date]] = set()

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, *, clock: Clock = utc_now
    ) -> AdmissionService:
        ttl = max(DEFAULT_ACTIVE_TTL, dt.timedelta(seconds=settings.job_deadline * 2))
        return cls(db, LimitPolicy.from_settings(settings), clock=clock, active_ttl=ttl)

    async def admit(self, request: JobRequest) -> Admission:
        """Refuse with a reason, or reserve a ledger row and return its job id."""
        guild_id = request.guild_id or DIRECT_MESSAGES
        refusal = check_moderation(
            request, await self._moderation.rules(guild_id, request.user_id)
        )
        if refusal is not None:
            return Admission(refusal=refusal)
        limits = await self._member_limits(guild_id, request.role_ids)
        cost = limits.cost_microusd(request.images)
        keys = lock_keys(guild_id, request.user_id, limits.policy)
        async with self._db.write(keys) as conn:
            now = self._clock()
            usage = await self._ledger.counts(
                conn, guild_id, request.user_id, self._bounds(limits, now)
            )
            refusal = evaluate(limits, usage, now, cost)
            if refusal is not None:
                self._note_spend_cap(refusal, guild_id, now)
                return Admission(refusal=refusal)
            job_id = await self._ledger.insert(
                conn,
                guild_id=guild_id,
                channel_id=request.channel_id or DIRECT_MESSAGES,
                user_id=request.user_id,
                prompt=request.prompt,
                size=request.size.wire,
                images=request.images,
                cost_microusd=cost,
                reroll_of=request.reroll_of,
                created_at=now,
            )
        return Admission(job_id=job_id)

    async def mark_submitted(self, job_id: int, task_id: str) -> bool:
        return await self._ledger.mark_submitted(job_id, task_id)

    async def finish(
        self,
        job_id: int,
        outcome: JobOutcome,
        *,
        task_id: str | None = None,
        timings: Mapping[str, float] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record how the job ended; False if it was already closed (finishing twice is harmless).

        Cancelled before it reached Novita, it is refunded (see `bot.storage.ledger`).
        """
        return await self._ledger.finish(
            job_id, outcome, task_id=task_id, timings=timings, error=error
        )

    async def blank_prompt(self, job_id: int) -> bool:
        """The owner deleted the image: its prompt is not kept (the row still counts)."""
        return await self._ledger.blank_prompt(job_id)

    async def lookup(self, job_id: int) -> LedgerEntry | None:
        """What the ledger knows about a job (a Re-roll reads its prompt and size)."""
        return await self._ledger.get(job_id)

    async def quota_status(
        self,
        guild_id: int | None,
        user_id: int,
        role_ids: Collection[int] = (),
        *,
        is_moderator: bool = False,
    ) -> QuotaStatus:
        """What the member has left, when it comes back, and whether they may start one now."""
        ledger_guild = guild_id or DIRECT_MESSAGES
        limits = await self._member_limits(ledger_guild, role_ids)
        async with self._db.read() as conn:
            now = self._clock()
            usage = await self._ledger.counts(
                conn, ledger_guild, user_id, self._bounds(limits, now)
            )
        status = quota_status(limits, usage, now)
        if guild_id is None or is_moderator:  # moderators are never locked out
            return status
        banned = await self._moderation.is_banned(guild_id, user_id)
        return dataclasses.replace(status, banned=banned)

    async def nsfw_policy(self, guild_id: int | None) -> NsfwPolicy:
        """How this guild shows images the model flagged (direct messages: withheld)."""
        if guild_id is None:
            return NsfwPolicy.BLOCK
        return (await self._guild_settings.get(guild_id)).nsfw_policy

    async def _member_limits(self, guild_id: int, role_ids: Collection[int]) -> MemberLimits:
        policy = guild_policy(self.defaults, await self._guild_settings.get(guild_id))
        roles = await self._roles.for_member(guild_id, role_ids)
        role_limits = {
            o.role_id: RoleLimits(o.generations_per_window, o.max_concurrent_jobs, o.daily_quota)
            for o in roles.overrides
        }
        exempt = set(role_ids) if roles.exempt else set()
        return policy.for_member(role_ids, role_limits, exempt)

    def _bounds(self, limits: MemberLimits, now: dt.datetime) -> UsageWindow:
        return UsageWindow(
            window_start=now - limits.user.window,
            day_start=start_of_utc_day(now),
            active_since=now - self.active_ttl,
        )

    def _note_spend_cap(self, refusal: Refusal, guild_id: int, now: dt.datetime) -> None:
        """Log once per day and scope that a spend cap started refusing jobs."""
        if refusal.kind is LimitKind.BOT_SPEND:
            scope = "bot"
        elif refusal.kind is LimitKind.GUILD_SPEND:
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
