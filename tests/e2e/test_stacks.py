"""The spec check every end-to-end test ends with: it sees each fake Discord a test made, and a
request that breaks Discord's OpenAPI spec fails the test."""

from __future__ import annotations

import aiohttp
import pytest

from fakes.discord.server import FakeDiscord
from tests.e2e.stacks import DiscordSpecWatch, StackFactory

pytestmark = pytest.mark.e2e


async def post_message(fake: FakeDiscord, body: dict[str, object]) -> int:
    channel = fake.add_channel(fake.add_guild(), "art")
    url = f"{fake.rest_base}/channels/{channel.id}/messages"
    headers = {"Authorization": f"Bot {fake.bot_token}"}
    async with aiohttp.ClientSession() as session, session.post(
        url, json=body, headers=headers
    ) as response:
        return response.status


async def test_a_request_against_the_spec_fails_the_watch() -> None:
    watch = DiscordSpecWatch()
    async with watch.fake() as fake:
        assert await post_message(fake, {"content": "fine"}) == 200
        watch.assert_none()
        assert await post_message(fake, {"content": "hi", "embed": {}}) == 400
    [violation] = watch.violations()
    assert "embed" in violation
    with pytest.raises(AssertionError, match="broke Discord's OpenAPI spec"):
        watch.assert_none()


async def test_every_stack_the_factory_built_is_watched_across_a_restart() -> None:
    watch = DiscordSpecWatch()
    make_stack = StackFactory(watch)
    never_started = make_stack(fixed_duration=10.0)
    assert never_started.options.fixed_duration == 10.0
    async with make_stack() as stack:
        await stack.restart_bot()
        assert watch.watched() == [stack.fake]  # one fake Discord, whatever the restarts
        assert await post_message(stack.fake, {"content": "x", "embed": {}}) == 400
    assert len(watch.violations()) == 1


def test_what_a_fake_discord_process_reported_fails_the_watch() -> None:
    watch = DiscordSpecWatch()
    watch.reported("bench run a", 0, [])
    watch.assert_none()  # a clean report adds nothing
    first = ["POST /channels/{channel_id}/messages: body.embed: No schema … [UNKNOWN_FIELD]"]
    watch.reported("bench run b", 3, first)
    assert watch.violations() == [f"bench run b: {first[0]}", "bench run b: … and 2 more"]
    with pytest.raises(AssertionError, match="broke Discord's OpenAPI spec"):
        watch.assert_none()
