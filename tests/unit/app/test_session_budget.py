"""The session-start margin: when the bot may IDENTIFY, what it says when it may not, and the
check `ImagineBot.connect` makes before its first IDENTIFY (discord.py's HTTP client stubbed)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app.bot import ImagineBot
from bot.app.session_budget import (
    EXIT_SESSION_BUDGET_LOW,
    SessionBudget,
    SessionBudgetLow,
    may_start,
    refusal_line,
    span,
    start_line,
)
from bot.config import Settings, settings_from_mapping


def budget(remaining: int, total: int = 1000, reset_after: float = 3600.0) -> SessionBudget:
    return SessionBudget(total=total, remaining=remaining, reset_after=reset_after,
                         max_concurrency=1)


def test_reset_after_arrives_in_milliseconds() -> None:
    read = SessionBudget.from_discord(
        {"total": 1000, "remaining": 993, "reset_after": 14_400_000, "max_concurrency": 1})
    assert read == budget(993, reset_after=14_400.0)


@pytest.mark.parametrize(("remaining", "shards", "reserve", "allowed"), [
    (1000, 1, 20, True),
    (21, 1, 20, True),  # exactly the reserve left after this start
    (20, 1, 20, False),
    (0, 1, 0, False),  # at zero the next IDENTIFY costs the token, whatever the setting
    (1, 1, 0, True),
    (3, 4, 0, False),  # four shards do not fit in three starts
    (24, 4, 20, True),
    (23, 4, 20, False),
    (1, 0, 0, True),  # an empty shard list still opens one session
    (0, 0, 0, False),
    (5, 1, -3, True),  # a negative reserve reads as none
])
def test_the_margin_rule(remaining: int, shards: int, reserve: int, allowed: bool) -> None:
    assert may_start(budget(remaining), shards, reserve) is allowed


def test_the_refusal_says_what_is_left_when_it_resets_and_what_to_do() -> None:
    line = refusal_line(budget(12, reset_after=3 * 3600 + 11 * 60 + 5), 1, 20,
                        datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
    assert "\n" not in line
    assert "12 of its 1000 daily session starts are left" in line
    assert "this start needs 1" in line and "DISCORD_MIN_SESSION_STARTS=20" in line
    assert "resets in 3 h 12 min (2025-03-01 13:11 UTC)" in line
    assert "reset the bot token" in line and f"exit code {EXIT_SESSION_BUDGET_LOW}" in line


def test_the_start_line() -> None:
    assert start_line(budget(993, reset_after=59), 2) == (
        "Discord session starts: 993 of 1000 left today, this start uses 2; "
        "resets in under a minute")


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "under a minute"), (59.9, "under a minute"), (60, "1 min"), (61, "2 min"),
    (3600, "1 h"), (86_400, "24 h"), (5 * 3600 + 1, "5 h 1 min"),
])
def test_spans_round_up_to_the_minute(seconds: float, shown: str) -> None:
    assert span(seconds) == shown


def test_the_exit_code_is_distinct() -> None:
    assert EXIT_SESSION_BUDGET_LOW not in {0, 1, 2, 130}


def test_the_reserve_is_a_setting() -> None:
    assert Settings().discord_min_session_starts == 20
    assert settings_from_mapping(
        {"DISCORD_MIN_SESSION_STARTS": "0"}).discord_min_session_starts == 0
    with pytest.raises(Exception, match="DISCORD_MIN_SESSION_STARTS"):
        settings_from_mapping({"DISCORD_MIN_SESSION_STARTS": "-1"})


# ---- the check ImagineBot.connect makes ------------------------------------------------------

class StubGateway:
    """`HTTPClient.get_bot_gateway` as discord.py returns it: (shards, url, limit)."""

    def __init__(self, remaining: int, recommended: int = 1, fails: bool = False) -> None:
        self.answer = (recommended, "wss://gateway.example",
                       {"total": 1000, "remaining": remaining, "reset_after": 600_000,
                        "max_concurrency": 1})
        self.fails = fails
        self.calls = 0

    async def get_bot_gateway(self) -> tuple[int, str, dict[str, int]]:
        self.calls += 1
        if self.fails:
            raise discord.GatewayNotFound()
        return self.answer


def bot_with(gateway: StubGateway, reserve: int = 20, **shards: Any) -> ImagineBot:
    bot = ImagineBot(Settings(discord_min_session_starts=reserve), **shards)
    bot.http = gateway  # type: ignore[assignment]
    return bot


def gauges(bot: ImagineBot) -> dict[str, float]:
    return {
        s.name: s.value
        for family in text_string_to_metric_families(bot.metrics.render().decode())
        for s in family.samples if s.name.startswith("imagine_discord_session_starts")
    }


def test_the_budget_is_unknown_until_read() -> None:
    found = gauges(ImagineBot(Settings()))
    assert math.isnan(found["imagine_discord_session_starts_remaining"])
    assert math.isnan(found["imagine_discord_session_starts_budget"])


async def test_a_normal_budget_logs_in_and_is_exported(caplog: pytest.LogCaptureFixture) -> None:
    bot = bot_with(StubGateway(remaining=980))
    caplog.set_level("INFO", logger="bot.app.bot")
    read = await bot.check_session_budget()
    assert read is not None and read.remaining == 980
    assert gauges(bot) == {"imagine_discord_session_starts_remaining": 980,
                           "imagine_discord_session_starts_budget": 1000}
    assert "Discord session starts: 980 of 1000 left today, this start uses 1" in caplog.text


async def test_a_low_budget_refuses_before_any_identify() -> None:
    bot = bot_with(StubGateway(remaining=20))
    with pytest.raises(SessionBudgetLow) as refused:
        await bot.check_session_budget()
    assert refused.value.shards == 1 and refused.value.reserve == 20
    assert "20 of its 1000 daily session starts are left" in refused.value.line
    assert gauges(bot)["imagine_discord_session_starts_remaining"] == 20


async def test_discords_recommended_shards_count_when_none_are_configured() -> None:
    with pytest.raises(SessionBudgetLow) as refused:
        await bot_with(StubGateway(remaining=23, recommended=4)).check_session_budget()
    assert refused.value.shards == 4
    assert await bot_with(StubGateway(remaining=24, recommended=4)).check_session_budget()


async def test_only_this_processs_shards_count() -> None:
    # SHARD_COUNT=8, SHARD_IDS=2,3: this process identifies two shards, not eight.
    gateway = StubGateway(remaining=22, recommended=16)
    assert await bot_with(gateway, shard_count=8, shard_ids=[2, 3]).check_session_budget()
    with pytest.raises(SessionBudgetLow) as refused:
        await bot_with(StubGateway(remaining=22), shard_count=8).check_session_budget()
    assert refused.value.shards == 8


async def test_an_unreadable_budget_logs_in_as_before(caplog: pytest.LogCaptureFixture) -> None:
    gateway = StubGateway(remaining=0, fails=True)
    assert await bot_with(gateway).check_session_budget() is None
    assert gateway.calls == 1 and "logging in unchecked" in caplog.text
