"""End to end: /imagine-history shows a member their own images — pages that turn after a
restart, links to results that still exist — and nothing of anyone else's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection

import pytest

from bot.storage.repositories.member_history import MEMBER_HISTORY_PAGE_SIZE
from bot.wording import history_presentation as show
from fakes.discord.server import FakeChannel, FakeMember, FakeMessage
from fakes.stack import LocalStack
from tests.e2e.support import assert_pings_nobody
from tests.e2e.test_admin import ephemeral_reply, imagine_ok, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90), pytest.mark.stack(fixed_duration=10.0)]

UPDATE_MESSAGE = 7
LINK = re.compile(r"\[open\]\(https://discord\.com/channels/(\d+|@me)/(\d+)/(\d+)\)")


async def history(
    stack: LocalStack, member: FakeMember, channel: FakeChannel | None = None, page: int = 1
) -> FakeMessage:
    await stack.bot.generation.results_recorded()  # links are written just after delivery
    options = {"page": page} if page != 1 else {}
    interaction = await stack.fake.invoke_slash(
        channel or stack.channel, member, "imagine-history", options
    )
    return await ephemeral_reply(interaction)


def entries(message: FakeMessage) -> list[str]:
    """One string per history entry (header line and prompt line)."""
    text = message.embeds[0]["description"].split("\n\n", 1)[1]
    return re.split(r"\n(?=[^>])", text)


def footer(message: FakeMessage) -> str:
    return str(message.embeds[0]["footer"]["text"])


def buttons_disabled(message: FakeMessage) -> list[bool]:
    return [c.get("disabled", False) for c in message.walk_components() if c["type"] == 2]


async def test_pages_links_and_privacy(stack: LocalStack) -> None:
    results = [await imagine_ok(stack, stack.alice, f"alice's fox number {n}") for n in range(7)]
    long_prompt = "**bold** @everyone <@123456789012345678> " + "y" * 300
    tricky = await imagine_ok(stack, stack.alice, long_prompt)
    await imagine_ok(stack, stack.bob, "bob's secret castle")
    failed = await stack.imagine(stack.alice, "this fails [mock:failed]", "512*512")
    await stack.wait_result(failed)
    await stack.bot.generation.jobs.wait_idle()

    first = await history(stack, stack.alice)
    assert footer(first) == "Page 1 of 2 · 9 images"
    assert first.embeds[0]["title"] == show.HISTORY_TITLE
    shown = entries(first)
    assert len(shown) == MEMBER_HISTORY_PAGE_SIZE
    assert shown[0].startswith("❌ failed (not counted) · <t:") and "[open]" not in shown[0]
    # Escaped, shortened, pinging nobody; linked to its message, which still exists.
    assert "> \\*\\*bold\\*\\* @\u200beveryone <@\u200b123456789012345678> yyy" in shown[1]
    assert shown[1].endswith("…") and len(shown[1].split("\n")[1]) < 210
    guild, channel, message_id = LINK.findall(shown[1])[0]
    assert (int(guild), int(channel), int(message_id)) == (
        stack.guild.id, stack.channel.id, tricky.id)
    assert "512×512" in shown[2] and "alice's fox number 6" in shown[2]
    assert "bob" not in text_of(first)
    assert buttons_disabled(first) == [True, False]

    # Only alice may turn her pages.
    nosy = await stack.click(first, "Next", stack.bob)
    assert (await ephemeral_reply(nosy)).content == show.NOT_YOUR_HISTORY
    assert footer(stack.fake.messages[first.id]) == "Page 1 of 2 · 9 images"

    turned = await stack.click(first, "Next", stack.alice)
    assert await turned.wait_acknowledged() == UPDATE_MESSAGE
    second = stack.fake.messages[first.id]
    assert footer(second) == "Page 2 of 2 · 9 images"
    assert [line.split("\n")[1] for line in entries(second)] == [
        "> alice's fox number 2", "> alice's fox number 1", "> alice's fox number 0"]
    assert buttons_disabled(second) == [False, True]

    # The buttons keep working after a restart; a deleted result is no longer linked.
    await stack.restart_bot()
    forgotten = await forget_on_delete(stack, results[0])
    back = await stack.click(second, "Previous", stack.alice)
    assert await back.wait_acknowledged() == UPDATE_MESSAGE
    assert footer(stack.fake.messages[first.id]) == "Page 1 of 2 · 9 images"
    assert forgotten == {results[0].id}
    last = entries(await history(stack, stack.alice, page=2))
    assert "[open]" not in last[-1] and "alice's fox number 0" in last[-1]
    assert LINK.search(last[-2])  # number 1 is still there

    # Bob sees his own only; in direct messages, only what was made there.
    bobs = entries(await history(stack, stack.bob))
    assert len(bobs) == 1 and "bob's secret castle" in bobs[0]
    dm = stack.fake.dm_channel(stack.alice)
    assert "haven't asked for any images here" in text_of(await history(stack, stack.alice, dm))
    await imagine_ok(stack, stack.alice, "a fox in my DMs", channel=dm)
    in_dms = await history(stack, stack.alice, dm)
    assert "in direct messages" in in_dms.embeds[0]["description"]
    [only] = entries(in_dms)
    assert "a fox in my DMs" in only and f"/channels/@me/{dm.id}/" in only
    assert assert_pings_nobody(stack.fake) > 10


async def forget_on_delete(stack: LocalStack, message: FakeMessage) -> set[int]:
    """Delete `message` by hand and wait until the bot has forgotten it (event-driven)."""
    history = stack.services.member_history
    done: asyncio.Future[set[int]] = asyncio.get_running_loop().create_future()
    original = history.forget_messages

    async def forget(message_ids: Collection[int]) -> int:
        count = await original(message_ids)
        if count and not done.done():
            done.set_result(set(message_ids))
        return count

    history.forget_messages = forget  # type: ignore[method-assign]
    try:
        await stack.fake.delete_message(message)
        return await asyncio.wait_for(done, 10)
    finally:
        history.forget_messages = original  # type: ignore[method-assign]
