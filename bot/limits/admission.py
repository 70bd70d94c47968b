"""Admission: may this member start an image here and now? If so, reserve it in the ledger.

One request type (`JobRequest`) goes in, one answer (`Admission`: a job id, or a `Refusal` with
its reason code and figures) comes out; the Discord edge words refusals. `admit` checks
moderation (bans, channel allow-list, blocked terms) and then every limit against the ledger,
and inserts the `reserved` row in the same locked transaction, so concurrent requests (from one
process or several sharing PostgreSQL) can never overshoot a limit. `finish` records how the
job ended: successes count, upstream failures and refusals are refunded.

Group commit: requests are not checked one transaction each. A `Batcher` hands every request
waiting at that moment to `_admit_batch`, which in one write transaction reads the guilds'
config versions (re-reading cached `GuildRules` only where an admin changed something), reads
the batch's members' ledger rows in one query (guild totals only where a guild limit exists),
decides each request in arrival order counting those admitted before it, and inserts every
admitted row in one statement. On PostgreSQL the transaction holds advisory locks on each member
(and on a guild or the bot only where such a limit exists), so processes admitting different
members never wait for each other; on SQLite the transaction is the file's one writer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.batching import DEFAULT_MAX_BATCH, Batcher
from bot.clock import WallClock, utc_now
from bot.jobs.model import DIRECT_MESSAGES, Install, JobOutcome, JobRequest, JobStatus
from bot.limits.blocked_terms import BlockedTerms
from bot.limits.guild_rules import GuildRules, GuildRulesCache, guild_policy
from bot.limits.names import RefusalReason
from bot.limits.policy import (
    LimitPolicy,
    MemberLimits,
    QuotaStatus,
    Refusal,
    RoleLimits,
    evaluate,
    quota_status,
    start_of_utc_day,
)
from bot.storage.database import Backend
from bot.storage.repositories.guild_settings import NsfwPolicy
from bot.storage.repositories.ledger import (
    GuildTotals,
    LedgerEntry,
    NewRow,
    UsageWindow,
    member_usage,
)
from bot.storage.repository_set import Repositories

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = [
    "DEFAULT_ACTIVE_TTL",
    "DIRECT_MESSAGES",
    "Admission",
    "AdmissionService",
    "Install",
    "JobOutcome",
    "JobRequest",
    "JobStatus",
    "UserInstallRules",
    "guild_policy",
    "lock_keys",
]

log = logging.getLogger(__name__)

# Unfinished jobs older than this are presumed lost with a crashed process and stop counting as
# "in progress" (they still count towards window and daily limits). It must exceed the longest
# queue wait plus the job deadline.
DEFAULT_ACTIVE_TTL = dt.timedelta(minutes=20)





@dataclass(frozen=True)
class UserInstallRules:
    """The host's settings for the user-installed app."""

    enabled: bool = True
    daily_cap: int = 0  # images per member per day; 0 = the per-member daily quota
    blocked_words: tuple[str, ...] = ()  # wherever no server rules apply




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


class AdmissionService:
    def __init__(
        self,
        repositories: Repositories,
        defaults: LimitPolicy,
        *,
        clock: WallClock = utc_now,
        active_ttl: dt.timedelta = DEFAULT_ACTIVE_TTL,
        max_batch: int = DEFAULT_MAX_BATCH,
        user_installs: UserInstallRules = UserInstallRules(),
    ) -> None:
        self.defaults = defaults
        self.user_installs = user_installs
        self.active_ttl = active_ttl
        self._db = repositories.database
        self._clock = clock
        self._guild_settings = repositories.guild_settings
        self._moderation = repositories.moderation
        self._roles = repositories.roles
        self._ledger = repositories.ledger
        self._spend_notices: set[tuple[str, dt.date]] = set()
        self._rules = GuildRulesCache(defaults, user_installs.blocked_words)
        self.screened_in_thread = 0  # prompts matched against blocked terms (for tests)
        self._batcher: Batcher[JobRequest, Admission] = Batcher(
            self._admit_batch, orphaned=self._give_back, max_batch=max_batch, name="admitter"
        )

    @classmethod
    def from_settings(
        cls, repositories: Repositories, settings: Settings, *, clock: WallClock = utc_now
    ) -> AdmissionService:
        ttl = max(DEFAULT_ACTIVE_TTL, dt.timedelta(seconds=settings.job_deadline * 2))
        user_installs = UserInstallRules(
            enabled=settings.user_installs_enabled,
            daily_cap=settings.user_install_daily_cap,
            blocked_words=settings.blocked_word_list,
        )
        return cls(
            repositories, LimitPolicy.from_settings(settings), clock=clock, active_ttl=ttl,
            user_installs=user_installs,
        )

    async def admit(self, request: JobRequest) -> Admission:
        """Refuse with a reason, or reserve a ledger row and return its job id.

        Raises what the database raises when it cannot be reached.
        """
        return await self._batcher.submit(request)

    async def close(self) -> None:
        """Stop the admitter; reservations whose requester stopped waiting are given back."""
        await self._batcher.close()

    async def _give_back(self, admission: Admission) -> None:
        """Admitted after its caller gave up: nobody will run it, so it must not count."""
        if admission.job_id is None:
            return
        try:
            await self.finish(admission.job_id, JobStatus.REFUNDED)
        except Exception as exc:
            log.warning("could not refund abandoned job %s: %s", admission.job_id, exc)

    async def _admit_batch(self, requests: Sequence[JobRequest]) -> list[Admission]:
        guild_ids = {request.guild_id or DIRECT_MESSAGES for request in requests}
        while True:
            screening = await self._screen(requests)
            keys = self._lock_keys(requests)
            try:
                async with self._db.write(keys) as conn:
                    rules = await self._rules.current(conn, guild_ids)
                    if self._db.backend is Backend.POSTGRESQL and not (
                        self._lock_keys(requests) <= keys
                    ):
                        raise _MoreLocksNeeded  # a guild's new limits need its lock: start over
                    if not screening.holds_for(rules):
                        raise _ScreenAgain  # a guild's terms moved: match them, then start over
                    return await self._decide(conn, requests, rules, screening.terms)
            except (_MoreLocksNeeded, _ScreenAgain):
                continue

    async def _screen(self, requests: Sequence[JobRequest]) -> _Screening:
        """The blocked term each prompt contains, by the cached rules, before any transaction:
        matching runs in a worker thread, so neither the event loop nor the database waits."""
        guild_ids = [request.guild_id or DIRECT_MESSAGES for request in requests]
        cached = {guild_id: self._rules.cached(guild_id) for guild_id in guild_ids}
        versions = {g: None if rules is None else rules.version for g, rules in cached.items()}
        terms_of = {g: None if rules is None else rules.blocked for g, rules in cached.items()}
        work = [(terms_of[g], rq.prompt) for g, rq in zip(guild_ids, requests, strict=True)]
        terms: list[str | None]
        if any(matcher for matcher, _ in work):
            terms = await asyncio.to_thread(_match_each, work)
            self.screened_in_thread += len(requests)
        else:
            terms = [None] * len(requests)
        return _Screening(versions, guild_ids, terms)

    def _lock_keys(self, requests: Sequence[JobRequest]) -> set[str]:
        """What the batch reads-then-writes, by the cached rules (a guild not seen: defaults)."""
        keys: set[str] = set()
        for request in requests:
            guild_id = request.guild_id or DIRECT_MESSAGES
            rules = self._rules.cached(guild_id)
            policy = rules.policy if rules is not None else self.defaults
            keys.update(lock_keys(guild_id, request.user_id, policy))
        return keys

    async def _decide(
        self,
        conn: AsyncConnection,
        requests: Sequence[JobRequest],
        rules: Mapping[int, GuildRules],
        blocked_terms: Sequence[str | None],
    ) -> list[Admission]:
        now = self._clock()
        answers: list[Admission | None] = [None] * len(requests)
        candidates: list[_Candidate] = []
        for index, request in enumerate(requests):
            guild_id = request.guild_id or DIRECT_MESSAGES
            guild = rules[guild_id]
            if request.install is Install.USER and not self.user_installs.enabled:
                answers[index] = Admission(refusal=Refusal(RefusalReason.USER_INSTALLS_OFF))
                continue
            refusal = guild.moderation_refusal(
                user_id=request.user_id,
                blocked_term=blocked_terms[index],
                channel_ids=(request.channel_id, request.parent_channel_id),
                is_moderator=request.is_moderator,
            )
            if refusal is not None:
                answers[index] = Admission(refusal=refusal)
            else:
                limits = self._install_limits(request, guild.member_limits(request.role_ids))
                candidates.append(_Candidate(index, request, guild_id, limits))
        if candidates:
            await self._count_and_reserve(conn, candidates, now, answers)
        return [answer for answer in answers if answer is not None]

    def _install_limits(self, request: JobRequest, limits: MemberLimits) -> MemberLimits:
        """The host's daily cap for the user-installed app replaces the daily quota there."""
        cap = self.user_installs.daily_cap
        if request.install is not Install.USER or not cap:
            return limits
        return dataclasses.replace(limits, user=dataclasses.replace(limits.user, daily=cap))

    async def _count_and_reserve(
        self,
        conn: AsyncConnection,
        candidates: list[_Candidate],
        now: dt.datetime,
        answers: list[Admission | None],
    ) -> None:
        """Judge each candidate in order against the ledger plus the ones admitted before it,
        then insert the admitted rows; fills in `answers`."""
        day_start = start_of_utc_day(now)
        active_since = now - self.active_ttl
        earliest = min([day_start, active_since, *(now - c.limits.user.window for c in candidates)])
        members = {(c.guild_id, c.request.user_id) for c in candidates}
        rows = await self._ledger.member_rows(conn, members, earliest)
        limited_guilds = {c.guild_id for c in candidates if _has_guild_limit(c.limits.policy)}
        totals = (
            await self._ledger.guild_totals(
                conn, limited_guilds, UsageWindow(now, day_start, active_since)
            )
            if limited_guilds
            else {}
        )
        needs_bot_spend = any(c.limits.policy.bot_daily_spend_usd for c in candidates)
        bot_spent = await self._ledger.bot_spent(conn, day_start) if needs_bot_spend else 0

        new_rows: list[NewRow] = []
        admitted: list[int] = []
        for c in candidates:
            request, limits = c.request, c.limits
            mine = rows.setdefault((c.guild_id, request.user_id), [])
            guild = totals.get(c.guild_id, GuildTotals())
            bounds = UsageWindow(now - limits.user.window, day_start, active_since)
            cost = (
                limits.cost_microusd(request.images)
                if request.cost_microusd is None
                else request.cost_microusd
            )
            refusal = evaluate(limits, member_usage(mine, bounds, guild, bot_spent), now, cost)
            if refusal is not None:
                self._note_spend_cap(refusal, c.guild_id, now)
                answers[c.index] = Admission(refusal=refusal)
                continue
            # Counted at once: the next request of this member (or guild) sees it.
            mine.append((now, str(JobStatus.RESERVED)))
            totals[c.guild_id] = GuildTotals(
                guild.active + 1, guild.today + 1, guild.spent_today_microusd + cost
            )
            bot_spent += cost
            admitted.append(c.index)
            new_rows.append(
                NewRow(
                    guild_id=c.guild_id,
                    channel_id=request.channel_id or DIRECT_MESSAGES,
                    user_id=request.user_id,
                    prompt=request.prompt,
                    size=request.size.wire,
                    images=request.images,
                    cost_microusd=cost,
                    reroll_of=request.reroll_of,
                    created_at=now,
                )
            )
        job_ids = await self._ledger.insert_many(conn, new_rows)
        for index, job_id in zip(admitted, job_ids, strict=True):
            answers[index] = Admission(job_id=job_id)

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

        Cancelled before it reached Novita, it is refunded (see `bot.storage.repositories.ledger`).
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
        if refusal.reason is RefusalReason.BOT_SPEND:
            scope = "bot"
        elif refusal.reason is RefusalReason.GUILD_SPEND_USD:
            scope = f"guild {guild_id}"
        else:
            return
        key = (scope, now.astimezone(dt.UTC).date())
        if key not in self._spend_notices:
            self._spend_notices.add(key)
            log.warning("daily spend cap reached for the %s; new jobs refused until 00:00 UTC",
                        scope)


@dataclass(frozen=True)
class _Candidate:
    index: int  # its place in the batch
    request: JobRequest
    guild_id: int
    limits: MemberLimits


class _MoreLocksNeeded(Exception):
    """Fresh rules of a guild need a lock the transaction did not take (PostgreSQL only)."""


class _ScreenAgain(Exception):
    """A guild's rules moved since its prompts were matched: match them against the new ones."""


@dataclass(frozen=True)
class _Screening:
    """The blocked term found in each request's prompt, and by which rules' versions."""

    versions: Mapping[int, int | None]  # by guild; None = no rules cached yet (nothing matched)
    guild_ids: Sequence[int]  # each request's
    terms: Sequence[str | None]  # each request's

    def holds_for(self, rules: Mapping[int, GuildRules]) -> bool:
        """Still the answer under these rules: the same version, or (rules first seen or
        changed) rules with no terms at all where nothing was found."""
        for guild_id, version in self.versions.items():
            current = rules[guild_id]
            if version == current.version:
                continue
            found = any(t is not None for g, t in zip(self.guild_ids, self.terms, strict=True)
                        if g == guild_id)
            if current.blocked or found:
                return False
        return True


def _match_each(matchers: Sequence[tuple[BlockedTerms | None, str]]) -> list[str | None]:
    """Runs in a worker thread: each prompt against its guild's terms, one scan each."""
    return [matcher.find(prompt) if matcher else None for matcher, prompt in matchers]


def _has_guild_limit(policy: LimitPolicy) -> bool:
    guild = policy.guild
    return bool(guild.concurrent or guild.daily or guild.daily_spend_usd)
