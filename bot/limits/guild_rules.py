"""Each guild's admission rules, cached per config version.

A `GuildRules` is what admission needs from one guild: its limit policy, role limits and
exemptions, bans, the channel allow-list and the blocked terms (compiled once per version, by
the first prompt screened against them, in admission's worker thread: never on the event loop
nor inside a transaction). `GuildRulesCache.current()` runs inside admission's transaction: one
query reads the config versions of the batch's guilds, and only a guild whose version moved (an
admin change, from this process or another) is read again.

Where no server's rules apply (direct messages, group DMs, a user-installed app in a server the
bot is not in: admission's place `0`), the bot-wide blocked words (`BLOCKED_WORDS`) are added to
that place's terms.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.limits.blocked_terms import BlockedTerms, visible_terms
from bot.limits.names import RefusalReason
from bot.limits.policy import LimitOverrides, LimitPolicy, MemberLimits, Refusal, RoleLimits
from bot.storage.repositories import config_versions
from bot.storage.repositories.guild_settings import GuildConfig, NsfwPolicy
from bot.storage.repositories.guild_snapshot import GuildSnapshot, read_snapshot


@dataclass(frozen=True)
class GuildRules:
    version: int
    policy: LimitPolicy  # the bot defaults with the guild's overrides
    nsfw_policy: NsfwPolicy
    role_limits: Mapping[int, RoleLimits]
    exempt_role_ids: frozenset[int]
    blocked: BlockedTerms
    allowed_channel_ids: frozenset[int]  # empty = every channel
    banned_user_ids: frozenset[int]

    def member_limits(self, role_ids: Collection[int]) -> MemberLimits:
        return self.policy.for_member(role_ids, self.role_limits, self.exempt_role_ids)

    def moderation_refusal(
        self,
        *,
        user_id: int,
        blocked_term: str | None,
        channel_ids: Collection[int | None],
        is_moderator: bool,
    ) -> Refusal | None:
        """Bans and the allow-list (which never apply to moderators), then the blocked term the
        prompt was found to contain (matched before the transaction, by these rules' terms)."""
        if not is_moderator:
            if user_id in self.banned_user_ids:
                return Refusal(RefusalReason.BANNED)
            allowed = self.allowed_channel_ids
            if allowed and not (set(channel_ids) & allowed):
                return Refusal(RefusalReason.CHANNEL, allowed_channel_ids=allowed)
        if blocked_term is not None:
            return Refusal(RefusalReason.BLOCKED_TERM, blocked_term=blocked_term)
        return None


def guild_policy(defaults: LimitPolicy, config: GuildConfig) -> LimitPolicy:
    """The bot defaults with this guild's overrides applied."""
    return defaults.for_guild(
        LimitOverrides(
            per_window=config.user_generations_per_window,
            window_minutes=config.user_window_minutes,
            concurrent=config.user_max_concurrent_jobs,
            daily=config.user_daily_quota,
            guild_concurrent=config.guild_max_concurrent_jobs,
            guild_daily=config.guild_daily_cap,
            guild_daily_spend_usd=config.guild_daily_spend_cap_usd,
        )
    )


def build_rules(
    defaults: LimitPolicy,
    snapshot: GuildSnapshot,
    version: int,
    extra_terms: tuple[str, ...] = (),
) -> GuildRules:
    # The terms are only checked here; the matcher compiles them on first use, off the loop.
    blocked = BlockedTerms(visible_terms((*snapshot.blocked_terms, *extra_terms)))
    return GuildRules(
        version=version,
        policy=guild_policy(defaults, snapshot.config),
        nsfw_policy=snapshot.config.nsfw_policy,
        role_limits={
            o.role_id: RoleLimits(o.generations_per_window, o.max_concurrent_jobs, o.daily_quota)
            for o in snapshot.role_overrides
        },
        exempt_role_ids=snapshot.exempt_role_ids,
        blocked=blocked,
        allowed_channel_ids=snapshot.allowed_channel_ids,
        banned_user_ids=snapshot.banned_user_ids,
    )


NO_SERVER: Final = 0  # the place of requests no server's rules govern (admission's DMs)


class GuildRulesCache:
    def __init__(self, defaults: LimitPolicy, bot_wide_blocked: tuple[str, ...] = ()) -> None:
        self.defaults = defaults
        self.bot_wide_blocked = bot_wide_blocked  # applies where no server rules do
        self._rules: dict[int, GuildRules] = {}
        self.reloads = 0  # guild snapshots read (for tests)

    def cached(self, guild_id: int) -> GuildRules | None:
        """The last rules read for this guild; may be stale (use `current` to decide)."""
        return self._rules.get(guild_id)

    async def current(
        self, conn: AsyncConnection, guild_ids: Collection[int]
    ) -> dict[int, GuildRules]:
        """The rules in force for these guilds, as of this transaction."""
        versions = await config_versions.read(conn, guild_ids)
        found: dict[int, GuildRules] = {}
        for guild_id, version in versions.items():
            rules = self._rules.get(guild_id)
            if rules is None or rules.version != version:
                snapshot = await read_snapshot(conn, guild_id)
                extra = self.bot_wide_blocked if guild_id == NO_SERVER else ()
                rules = build_rules(self.defaults, snapshot, version, extra)
                self._rules[guild_id] = rules
                self.reloads += 1
            found[guild_id] = rules
        return found
