"""Contexts told apart from Discord's own fields (`context`, `authorizing_integration_owners`,
the bot's membership), never from the channel's class: the app in a DM between two members, a
group DM and a server without the bot is a user install, with its switch and daily cap; the
bot's own DM stays the bot's DM; a late result where the bot cannot post goes by DM or is kept,
also for a job taken back after a restart — never lost, never refunded."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.jobs.model import DIRECT_MESSAGES, JobStatus
from bot.wording import presentation as ui
from fakes.discord.models import FakeChannel, FakeMember
from fakes.discord.server import FakeDiscord, FakeInteraction
from fakes.novita.tasks import MockTask
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import (
    CHANNEL_POSTS,
    bot_posts,
    button_labels,
    dm_messages,
    jpeg_size,
    kept_count,
    private_refusal,
    title,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

NEVER_FINISH = "[mock:never-finish]"  # the mock keeps the task running until the test ends it
USER_INSTALLS_OFF = "installed to your account"
# Where the bot is not a member: (channel, requester), the requester with DMs open or closed.
Place = Callable[[LocalStack, bool], tuple[FakeChannel, FakeMember]]


def member_dm(stack: LocalStack, accepts_dms: bool) -> tuple[FakeChannel, FakeMember]:
    """A member of the bot's server, in their 1:1 DM with another member."""
    ann = stack.fake.add_member(stack.guild, "ann", accepts_dms=accepts_dms)
    return stack.fake.add_member_dm(ann.user, stack.bob.user), ann


def group_dm(stack: LocalStack, accepts_dms: bool) -> tuple[FakeChannel, FakeMember]:
    ann = stack.fake.add_member(stack.guild, "ann", accepts_dms=accepts_dms)
    return stack.fake.add_group_dm(ann.user, stack.bob.user), ann


def server_without_the_bot(
    stack: LocalStack, accepts_dms: bool
) -> tuple[FakeChannel, FakeMember]:
    elsewhere = stack.fake.add_foreign_channel()
    return elsewhere, stack.fake.add_outsider(elsewhere, "ann", accepts_dms=accepts_dms)


PLACES = [
    pytest.param(member_dm, id="dm-between-members"),
    pytest.param(group_dm, id="group-dm"),
    pytest.param(server_without_the_bot, id="server-without-the-bot"),
]


async def statuses(stack: LocalStack, member: FakeMember) -> list[JobStatus]:
    """The member's jobs where no server's rules apply (the ledger's place 0), newest first."""
    await stack.bot.generation.jobs.wait_idle()
    page = await stack.services.repositories.ledger.history(
        DIRECT_MESSAGES, user_id=member.user.id, limit=50)
    return [entry.status for entry in page.entries]


async def task_of(stack: LocalStack, prompt: str) -> MockTask:
    return await stack.fake.wait_for(lambda: next(
        (t for t in stack.mock.tasks.values() if t.prompt.startswith(prompt)), None))


def finish(stack: LocalStack, task: MockTask) -> None:
    """Novita finishes the task now (its next poll sees SUCCEED)."""
    task.succeeded_at = stack.mock.now()


async def expire_then_finish(stack: LocalStack, interaction: FakeInteraction, prompt: str) -> None:
    """The job runs past the interaction token's 15 minutes, then its image is ready."""
    task = await task_of(stack, prompt)
    await interaction.wait_original(lambda m: "Cancel" in button_labels(m))
    stack.fake.clock.advance(stack.fake.config.token_lifetime + 1)
    finish(stack, task)


def posts_into(fake: FakeDiscord, channel: FakeChannel) -> list[str]:
    return [path for path in bot_posts(fake) if path == f"/channels/{channel.id}/messages"]


async def test_the_fake_sends_discords_fields_for_a_dm_between_members(
    stack: LocalStack,
) -> None:
    dm, ann = member_dm(stack, True)
    interaction = await stack.imagine(ann, "a teapot", "512*512", channel=dm)
    payload = interaction.payload
    assert payload["context"] == 2 and "guild_id" not in payload
    assert payload["authorizing_integration_owners"] == {"1": str(ann.user.id)}
    assert payload["channel"]["type"] == 1  # discord.py builds a DMChannel for it
    assert {r["id"] for r in payload["channel"]["recipients"]} == {
        str(ann.user.id), str(stack.bob.user.id)}
    assert title(await stack.wait_result(interaction)) == ui.RESULT_TITLE
    assert bot_posts(stack.fake) == []  # answered through the interaction only
    assert await statuses(stack, ann) == [JobStatus.SUCCEEDED]  # counted at place 0
    own = await stack.imagine(ann, "a teapot", "512*512", channel=stack.fake.dm_channel(ann))
    assert (own.payload["context"], own.payload["authorizing_integration_owners"]) == (
        1, {"0": "0"})
    assert title(await stack.wait_result(own)) == ui.RESULT_TITLE


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.stack(settings={"user_installs_enabled": False})
async def test_user_installs_switched_off_refuse_wherever_the_bot_is_not(
    stack: LocalStack, place: Place
) -> None:
    channel, ann = place(stack, True)
    reply = await private_refusal(await stack.imagine(ann, "a teapot", "512*512", channel=channel))
    assert USER_INSTALLS_OFF in reply.content
    assert stack.mock.stats.submits == 0
    # The member's own DM with the bot is the bot's DM: not a user install, so not refused.
    own = await stack.imagine(ann, "a teapot", "512*512", channel=stack.fake.dm_channel(ann))
    assert title(await stack.wait_result(own)) == ui.RESULT_TITLE


@pytest.mark.stack(settings={"user_install_daily_cap": 1})
async def test_the_user_install_cap_counts_a_dm_between_members(stack: LocalStack) -> None:
    dm, ann = member_dm(stack, True)
    first = await stack.imagine(ann, "one", "512*512", channel=dm)
    assert title(await stack.wait_result(first)) == ui.RESULT_TITLE
    reply = await private_refusal(await stack.imagine(ann, "two", "512*512", channel=dm))
    assert "1 image for today" in reply.content
    # Counted together with every other place the bot is not a member of.
    group = stack.fake.add_group_dm(ann.user, stack.bob.user)
    reply = await private_refusal(await stack.imagine(ann, "three", "512*512", channel=group))
    assert "1 image for today" in reply.content
    # The bot's own DM is not a user install: the cap does not apply there.
    own = await stack.imagine(ann, "four", "512*512", channel=stack.fake.dm_channel(ann))
    assert title(await stack.wait_result(own)) == ui.RESULT_TITLE
    assert stack.mock.stats.submits == 2


@pytest.mark.parametrize("place", PLACES)
async def test_a_late_result_where_the_bot_cannot_post_goes_by_dm(
    stack: LocalStack, place: Place
) -> None:
    fake = stack.fake
    channel, ann = place(stack, True)
    prompt = "a slow sunrise"
    interaction = await stack.imagine(ann, f"{prompt} {NEVER_FINISH}", "512*512", channel=channel)
    await expire_then_finish(stack, interaction, prompt)

    dm = fake.dm_channel(ann.user)
    late = await fake.wait_for(lambda: next(iter(dm_messages(fake, dm)), None), timeout=10)
    assert late.embeds[0].get("title") == ui.RESULT_TITLE
    assert jpeg_size(late.attachments[0].data) == (512, 512)
    assert bot_posts(fake) == [f"/channels/{dm.id}/messages"]  # never into `channel`
    assert await statuses(stack, ann) == [JobStatus.SUCCEEDED]
    assert await kept_count(stack, ann.user.id) == 0


@pytest.mark.parametrize("place", PLACES)
async def test_a_late_result_for_closed_dms_is_kept(stack: LocalStack, place: Place) -> None:
    fake = stack.fake
    channel, ann = place(stack, False)
    prompt = "a slow storm"
    interaction = await stack.imagine(ann, f"{prompt} {NEVER_FINISH}", "512*512", channel=channel)
    await expire_then_finish(stack, interaction, prompt)

    await fake.wait_for_call("POST", CHANNEL_POSTS, lambda c: c.status == 403, timeout=10)
    assert await statuses(stack, ann) == [JobStatus.SUCCEEDED]  # delivered later, not refunded
    assert await kept_count(stack, ann.user.id) == 1
    assert posts_into(fake, channel) == []


async def test_the_bots_own_dm_gets_its_late_result_in_that_dm(stack: LocalStack) -> None:
    fake = stack.fake
    dm = fake.dm_channel(stack.alice)
    prompt = "a slow moonrise"
    interaction = await stack.imagine(
        stack.alice, f"{prompt} {NEVER_FINISH}", "512*512", channel=dm)
    assert interaction.payload["context"] == 1
    await expire_then_finish(stack, interaction, prompt)

    late = await fake.wait_for(lambda: next(iter(dm_messages(fake, dm)), None), timeout=10)
    assert late.embeds[0].get("title") == ui.RESULT_TITLE
    assert late.mentioned_user_ids == {stack.alice.id}  # the bot's DM: posted as in a channel
    assert bot_posts(fake) == [f"/channels/{dm.id}/messages"]
    assert await statuses(stack, stack.alice) == [JobStatus.SUCCEEDED]


@pytest.mark.parametrize("accepts_dms", [True, False], ids=["dms-open", "dms-closed"])
@pytest.mark.parametrize("place", PLACES)
async def test_a_job_taken_back_after_a_restart_delivers_or_keeps_its_late_result(
    make_stack: StackFactory, place: Place, accepts_dms: bool
) -> None:
    async with make_stack() as stack:
        fake = stack.fake
        channel, ann = place(stack, accepts_dms)
        prompt = "a patient lighthouse"
        interaction = await stack.imagine(
            ann, f"{prompt} {NEVER_FINISH}", "512*512", channel=channel)
        task = await task_of(stack, prompt)
        await interaction.wait_original(lambda m: "Cancel" in button_labels(m))
        await stack.bot.close()  # the job stays in the journal for the next start
        fake.clock.advance(fake.config.token_lifetime + 60)  # down past the token's lifetime
        finish(stack, task)

        await stack.start_bot()
        await stack.bot.recovery.done.wait()
        assert stack.bot.recovery.taken_back
        dm = fake.dm_channel(ann.user)
        if accepts_dms:
            late = await fake.wait_for(
                lambda: next(iter(dm_messages(fake, dm)), None), timeout=10)
            assert late.embeds[0].get("title") == ui.RESULT_TITLE
            assert jpeg_size(late.attachments[0].data) == (512, 512)
        else:
            await fake.wait_for_call("POST", CHANNEL_POSTS, lambda c: c.status == 403, timeout=10)
        assert await statuses(stack, ann) == [JobStatus.SUCCEEDED]
        assert await kept_count(stack, ann.user.id) == (0 if accepts_dms else 1)
        assert posts_into(fake, channel) == []
        assert stack.mock.stats.submits == 1  # taken back, never submitted again
