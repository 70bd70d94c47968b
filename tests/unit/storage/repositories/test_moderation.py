"""Moderation lists on both backends: bans, re-bans, blocked rules, unbans."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.storage import ModerationRepo
from bot.storage.database import Database

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock


SNOWFLAKE = 1_234_567_890_123_456_789  # Discord ids need all 64 bits


async def test_moderation_lists(database: Database, utc_clock: ManualUtcClock) -> None:
    repo = ModerationRepo(database, utc_clock)
    assert await repo.add_blocked_term(1, "gore", added_by=5)
    assert not await repo.add_blocked_term(1, "gore")
    await repo.add_blocked_term(1, "blood*")
    assert await repo.blocked_terms(1) == ["blood*", "gore"]
    assert await repo.remove_blocked_term(1, "gore")

    assert await repo.allowed_channels(1) == frozenset()
    assert await repo.allow_channel(1, 100) and not await repo.allow_channel(1, 100)
    assert await repo.allowed_channels(1) == {100}
    assert await repo.disallow_channel(1, 100)

    await repo.ban(1, SNOWFLAKE, reason="spam", banned_by=5)
    await repo.ban(1, SNOWFLAKE, reason="spam again", banned_by=6)  # re-ban updates
    assert await repo.is_banned(1, SNOWFLAKE) and not await repo.is_banned(2, SNOWFLAKE)
    [ban] = await repo.bans(1)
    assert (ban.user_id, ban.reason, ban.banned_by, ban.created_at) == (
        SNOWFLAKE,
        "spam again",
        6,
        utc_clock.now,
    )
    rules = await repo.rules(1, SNOWFLAKE)
    assert rules.user_banned and rules.blocked_terms == ("blood*",)
    assert await repo.unban(1, SNOWFLAKE) and not await repo.is_banned(1, SNOWFLAKE)
