"""End to end: what members see of the limits — role overrides and exempt roles, /imagine-quota
numbers, usage statistics and history for moderators, the NSFW spoiler policy, and a queue
position while the bot-wide upstream slots are busy."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app.bot import ImagineBot
from bot.wording import presentation as ui
from fakes.discord.server import FakeMember, FakeMessage, FakeRole
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import assert_pings_nobody
from tests.e2e.test_admin import (
    RELATIVE_TIME,
    admin,
    ephemeral_reply,
    fields,
    imagine_ok,
    imagine_refused,
    jobs_settled,
    text_of,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]



def fast(**settings: Any) -> dict[str, Any]:
    """Stack options where each job takes about 0.1 s; `settings` override the Settings."""
    return {"fixed_duration": 10.0, "settings": settings}


class RolesStack(LocalStack):
    """The local stack plus two roles and a member with each, added before the bot connects
    (the bot learns roles from GUILD_CREATE)."""

    artists: FakeRole
    vips: FakeRole
    carol: FakeMember  # an Artist
    dave: FakeMember  # a VIP

    async def start_bot(self) -> ImagineBot:
        if not hasattr(self, "artists"):
            self.artists = self.fake.add_role(self.guild, "Artists")
            self.vips = self.fake.add_role(self.guild, "VIP")
            self.carol = self.fake.add_member(self.guild, "carol", roles=[self.artists])
            self.dave = self.fake.add_member(self.guild, "dave", roles=[self.vips])
        return await super().start_bot()


async def quota(stack: LocalStack, member: FakeMember) -> FakeMessage:
    interaction = await stack.fake.invoke_slash(stack.channel, member, "imagine-quota")
    return await ephemeral_reply(interaction)


@pytest.fixture
async def roles_stack(make_stack: StackFactory) -> AsyncIterator[RolesStack]:
    async with make_stack(RolesStack, **fast(user_generations_per_window=1)) as stack:
        yield stack


async def test_role_override_replaces_the_default_and_exempt_roles_skip_limits(
    roles_stack: RolesStack,
) -> None:
    stack = roles_stack
    reply = await admin(stack, "roles set", {"role": stack.artists, "per_window": 3})
    assert reply.content.startswith(f"Members with <@&{stack.artists.id}>: per window 3")
    reply = await admin(stack, "exempt add", {"role": stack.vips})
    assert "now skip the per-member limits" in reply.content

    status = fields(await quota(stack, stack.carol))
    assert status["This window"].startswith("**3** of 3 left (every 10 minutes)")
    for n in range(3):
        await imagine_ok(stack, stack.carol, f"artist {n}")
    refusal = await imagine_refused(stack, stack.carol, "artist 4")
    assert refusal.startswith("Sorry, you can start 3 images every 10 minutes.")

    for n in range(4):
        await imagine_ok(stack, stack.dave, f"vip {n}")
    vip = await quota(stack, stack.dave)
    assert fields(vip)["This window"] == "unlimited"
    assert "exempt" in vip.embeds[0]["footer"]["text"]

    await imagine_ok(stack, stack.alice, "default member")
    assert (await imagine_refused(stack, stack.alice, "again")).startswith(
        "Sorry, you can start 1 image every 10 minutes."
    )

    listed = text_of(await admin(stack, "roles list"))
    assert f"<@&{stack.artists.id}>: per window 3" in listed and f"<@&{stack.vips.id}>" in listed
    await admin(stack, "roles clear", {"role": stack.artists})
    await admin(stack, "exempt remove", {"role": stack.vips})
    assert (await imagine_refused(stack, stack.dave, "no longer exempt")).startswith(
        "Sorry, you can start 1 image every 10 minutes."
    )


async def test_quota_shows_what_is_left_and_when_it_comes_back(make_stack: StackFactory) -> None:
    options = fast(user_generations_per_window=3, user_daily_quota=5, user_max_concurrent_jobs=2)
    async with make_stack(**options) as stack:
        fresh = await quota(stack, stack.alice)
        assert fresh.embeds[0]["description"] == "You can make an image now."
        assert fields(fresh)["This window"] == "**3** of 3 left (every 10 minutes)"

        await imagine_ok(stack, stack.alice, "one")
        await imagine_ok(stack, stack.alice, "two")
        status = fields(await quota(stack, stack.alice))
        window, today = status["This window"], status["Today"]
        assert window.startswith("**1** of 3 left (every 10 minutes)\nNext one back <t:")
        assert today.startswith("**3** of 5 left\nResets <t:") and "(00:00 UTC)" in today
        assert RELATIVE_TIME.search(window) and RELATIVE_TIME.search(today)
        assert status["At once"].startswith("0 running (at most 2 at once")

        await imagine_ok(stack, stack.alice, "three")
        full = await quota(stack, stack.alice)
        assert fields(full)["This window"].startswith("**0** of 3 left")
        description = full.embeds[0]["description"]
        assert description.startswith("Sorry, you can start 3 images every 10 minutes.")
        assert RELATIVE_TIME.search(description)

        # In direct messages the bot's defaults apply, counted apart from the server.
        dm = await stack.fake.invoke_slash(stack.fake.dm_channel(stack.alice), stack.alice,
                                           "imagine-quota")
        assert fields(await ephemeral_reply(dm))["This window"].startswith("**3** of 3 left")


async def test_usage_and_history_show_the_right_numbers(make_stack: StackFactory) -> None:
    async with make_stack(**fast()) as stack:
        long_prompt = "**bold** @everyone " + "x" * 400
        await imagine_ok(stack, stack.alice, long_prompt)
        await imagine_ok(stack, stack.alice, "a second one")
        await imagine_ok(stack, stack.bob, "bob's only")
        failed = await stack.imagine(stack.bob, "this fails [mock:failed]", "512*512")
        assert (await stack.wait_result(failed)).embeds[0]["title"] == ui.FAILURE_TITLE
        await jobs_settled(stack)

        usage = fields(await admin(stack, "usage"))
        assert usage["Images today"] == "3"
        assert usage["Members today"] == "2"
        assert usage["Failed today"] == "1 (not counted)"
        assert usage["Spend today (estimated)"] == "$0.06"  # 3 × $0.02
        assert usage["Spend this month (estimated)"] == "$0.06"
        assert usage["Top members today"] == (
            f"1. <@{stack.alice.id}> — 2 images\n2. <@{stack.bob.id}> — 1 image"
        )

        # Six more, at once, so history has two pages of eight.
        started = [await stack.imagine(stack.mod, f"batch {n}", "512*512") for n in range(6)]
        await asyncio.gather(*(stack.wait_result(i) for i in started))
        await jobs_settled(stack)

        first = await admin(stack, "history")
        embed = first.embeds[0]
        assert embed["footer"]["text"] == "Page 1 of 2 · 10 jobs, newest first"
        assert embed["description"].count("\n> ") == 8
        assert [c.get("disabled", False) for c in first.walk_components() if c["type"] == 2] == [
            True, False,  # Previous, Next
        ]
        click = await stack.click(first, "Next", stack.admin)
        assert await click.wait_acknowledged() == 7, text_of(click.original_message() or first)
        second = stack.fake.messages[first.id]
        page_two = second.embeds[0]
        assert page_two["footer"]["text"] == "Page 2 of 2 · 10 jobs, newest first"
        assert [c.get("disabled", False) for c in second.walk_components() if c["type"] == 2] == [
            False, True,
        ]
        # The oldest two: alice's long, escaped, truncated prompt is last.
        lines = page_two["description"].split("\n")
        assert lines[-1].startswith("> \\*\\*bold\\*\\* @\u200beveryone xxx")
        assert lines[-1].endswith("…") and len(lines[-1]) < 200
        assert f"<@{stack.alice.id}> in <#{stack.channel.id}> · 512×512 · succeeded" in lines[-2]

        bobs = await admin(stack, "history", {"member": stack.bob})
        text = bobs.embeds[0]["description"]
        assert text.startswith(f"Only <@{stack.bob.id}>'s images.")
        assert "❌" in text and "failed" in text and "bob's only" in text
        assert "alice" not in text and bobs.embeds[0]["footer"]["text"].startswith("Page 1 of 1 ·")
        assert not bobs.components
        assert assert_pings_nobody(stack.fake) > 20


async def test_nsfw_policy_spoiler_posts_flagged_images_as_spoilers(
    make_stack: StackFactory,
) -> None:
    async with make_stack(**fast()) as stack:
        withheld = await stack.imagine(stack.alice, "a fox [mock:nsfw]", "512*512")
        message = await stack.wait_result(withheld)
        assert message.embeds[0]["title"] == ui.WITHHELD_TITLE and not message.attachments

        reply = await admin(stack, "nsfw", {"policy": "spoiler"})
        assert reply.content == "Flagged images are now posted behind a spoiler."
        message = await imagine_ok(stack, stack.alice, "a fox [mock:nsfw]")
        [attachment] = message.attachments
        assert attachment.filename.startswith("SPOILER_")
        assert message.channel_id == stack.channel.id and not stack.channel.nsfw


async def test_second_member_sees_their_queue_position_while_the_slot_is_busy(
    make_stack: StackFactory,
) -> None:
    options = {"fixed_duration": 60.0, "settings": {"max_concurrent_upstream_tasks": 1}}
    async with make_stack(**options) as stack:
        first = await stack.imagine(stack.alice, "the slow first job", "512*512")
        await stack.fake.wait_for(lambda: len(stack.mock.tasks) == 1)
        second = await stack.imagine(stack.bob, "waits its turn", "512*512")
        queued = await second.wait_original(
            lambda m: bool(m.embeds) and m.embeds[0].get("title") == ui.queue_position_title(1)
        )
        assert queued.embeds[0]["footer"]["text"] == "Requested by bob"
        assert len(stack.mock.tasks) == 1  # bob's job has not reached Novita yet
        done_first = await stack.wait_result(first)
        done_second = await stack.wait_result(second)
        assert done_first.attachments and done_second.attachments
        assert len(stack.mock.tasks) == 2


def test_relative_time_pattern() -> None:
    assert re.fullmatch(RELATIVE_TIME, "<t:1700000000:R>")
