"""The fake Discord's session-start budget: GET /gateway/bot reports it, each IDENTIFY spends
one, and one past it resets the token and ends every session, as Discord does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands

from fakes.discord.server import FakeDiscord, FakeDiscordConfig, run_bot_against
from tests.fakes.test_fake_discord import QuickIdentifyBot

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    config = FakeDiscordConfig(session_start_total=1000, session_starts_remaining=3,
                               session_start_reset_after=5400.0)
    async with FakeDiscord(config) as server:
        yield server


async def gateway_bot(fake: FakeDiscord) -> Any:
    headers = {"Authorization": f"Bot {fake.bot_token}"}
    async with aiohttp.ClientSession() as http, http.get(
        f"{fake.rest_base}/gateway/bot", headers=headers
    ) as response:
        assert response.status == 200
        return await response.json()


async def test_the_limit_is_reported_and_spent_by_each_identify(fake: FakeDiscord) -> None:
    assert (await gateway_bot(fake))["session_start_limit"] == {
        "total": 1000, "remaining": 3, "reset_after": 5_400_000, "max_concurrency": 1}
    bot = QuickIdentifyBot(command_prefix=commands.when_mentioned,
                           intents=discord.Intents.default(), shard_count=2)
    async with run_bot_against(fake, bot):
        assert fake.state.identifies == 2
    assert (await gateway_bot(fake))["session_start_limit"]["remaining"] == 1
    assert not fake.spec_violations  # the route is checked against Discord's spec like any


async def identify(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(fake.gateway_url)
    hello = await ws.receive_json()
    assert hello["op"] == 10
    await ws.send_json({"op": 2, "d": {"token": fake.bot_token, "intents": 0,
                                        "properties": {}}})
    return ws


async def test_an_identify_past_the_budget_resets_the_token(fake: FakeDiscord) -> None:
    fake.config.session_starts_remaining = 1
    token = fake.bot_token
    async with aiohttp.ClientSession() as http:
        first = await identify(fake, http)
        ready = await first.receive_json()
        assert ready["t"] == "READY" and fake.state.session_starts_left == 0
        second = await identify(fake, http)
        for ws in (second, first):
            while (await ws.receive()).type is not aiohttp.WSMsgType.CLOSE:
                pass  # GUILD_CREATEs and the like, until the close
            assert ws.close_code == 4004
        await first.close()
        await second.close()
    assert fake.state.token_resets == 1 and fake.bot_token != token
    assert fake.state.identifies == 1
