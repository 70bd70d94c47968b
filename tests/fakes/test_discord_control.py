"""The fake Discord's control API (`fakes.discord.control`) and its own process
(`python -m fakes.discord`): the report carries the requests that broke Discord's spec, which is
the only way a test or the benchmark can see them when the fake runs in another process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.discord.control import (
    CONTROL_PREFIX,
    SPEC_VIOLATIONS_SHOWN,
    FakeDiscordControl,
    build_world,
)
from fakes.discord.server import FakeDiscord

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
AGAINST_THE_SPEC = {"content": "hi", "embed": {}}  # `embed` left Discord's API in v10


async def post_message(
    session: aiohttp.ClientSession, rest_base: str, token: str, channel_id: str, body: Any
) -> int:
    url = f"{rest_base}/channels/{channel_id}/messages"
    async with session.post(url, json=body, headers={"Authorization": f"Bot {token}"}) as response:
        return response.status


async def test_the_report_counts_spec_violations_and_prints_the_first_few() -> None:
    fake = FakeDiscord()
    control = FakeDiscordControl(fake, build_world(fake, 1))
    channel = str(control.world.channels[0].id)
    async with fake, aiohttp.ClientSession() as session:
        assert await post_message(session, fake.rest_base, fake.bot_token, channel, {
            "content": "fine"}) == 200
        clean = control.report()
        assert (clean["spec_violations"], clean["spec_violations_first"]) == (0, [])
        for _ in range(SPEC_VIOLATIONS_SHOWN + 2):
            assert await post_message(
                session, fake.rest_base, fake.bot_token, channel, AGAINST_THE_SPEC) == 400
    report = control.report()
    assert report["spec_violations"] == len(fake.spec_violations) == SPEC_VIOLATIONS_SHOWN + 2
    shown = [str(violation) for violation in fake.spec_violations[:SPEC_VIOLATIONS_SHOWN]]
    assert report["spec_violations_first"] == shown
    assert "POST /channels/{channel_id}/messages: body.embed:" in shown[0]
    json.dumps(report)  # served as JSON as it is


@pytest.fixture
async def fake_discord_process() -> AsyncIterator[dict[str, Any]]:
    """`python -m fakes.discord` as the benchmark starts it; its printed addresses."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fakes.discord", "--port", "0", "--guilds", "1",
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        line = await process.stdout.readline()  # the addresses, once it listens
        yield dict(json.loads(line))
    finally:
        process.send_signal(signal.SIGTERM)
        await process.communicate()
    assert process.returncode == 0


async def test_a_fake_discord_process_reports_a_request_against_the_spec(
    fake_discord_process: dict[str, Any],
) -> None:
    rest_base, token = fake_discord_process["rest_base"], fake_discord_process["bot_token"]
    control = fake_discord_process["control_url"]
    assert control == fake_discord_process["base_url"] + CONTROL_PREFIX
    async with aiohttp.ClientSession() as session:
        async with session.get(control + "/status") as response:
            [guild] = (await response.json())["guilds"]
        async with session.get(control + "/report") as response:
            before = await response.json()
        # The spec is checked before the route looks the channel up, so any id will do.
        assert await post_message(session, rest_base, token, guild, AGAINST_THE_SPEC) == 400
        async with session.get(control + "/report") as response:
            after = await response.json()
    assert (before["spec_violations"], before["spec_violations_first"]) == (0, [])
    assert after["spec_violations"] == 1
    [violation] = after["spec_violations_first"]
    assert violation.startswith("POST /channels/{channel_id}/messages: body.embed:")
