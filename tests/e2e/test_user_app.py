"""The bot as a user-installable app: used where it is not a member (another server, a group DM),
it answers through the interaction only; late results go by DM, or wait for the next command."""

from __future__ import annotations

import asyncio

import pytest

from bot.interactions.kept_results import KEPT_NOTE
from bot.wording import presentation as ui
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import (
    CHANNEL_POSTS,
    bot_posts,
    dm_messages,
    jpeg_size,
    kept_count,
    private_refusal,
    title,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_user_installed_imagine_in_a_server_without_the_bot(stack: LocalStack) -> None:
    fake = stack.fake
    elsewhere = fake.add_foreign_channel()
    bob = fake.add_outsider(elsewhere, "bob")
    interaction = await stack.imagine(bob, "a lighthouse at dusk", "512*512", channel=elsewhere)
    assert interaction.payload["authorizing_integration_owners"] == {"1": str(bob.id)}
    message = await stack.wait_result(interaction)
    assert title(message) == ui.RESULT_TITLE
    assert jpeg_size(message.attachments[0].data) == (512, 512)
    assert bot_posts(fake) == []  # interaction only: nothing posted to any channel
    # Counted where no server's rules apply (ledger place 0), not under the foreign server.
    await stack.bot.generation.results_recorded()
    status = await stack.services.admissions.quota_status(None, bob.id)
    assert status.daily_used == 1


async def test_in_a_group_dm_the_late_result_goes_by_dm(make_stack: StackFactory) -> None:
    async with make_stack(fixed_duration=50.0) as stack:
        fake = stack.fake
        carol_user = fake.add_outsider(fake.add_foreign_channel(), "carol")
        group = fake.add_group_dm(carol_user.user, stack.alice.user)
        carol = fake.add_outsider(group, "carol2")
        interaction = await stack.imagine(carol, "a slow sunrise", "512*512", channel=group)
        assert interaction.payload["context"] == 2
        await interaction.wait_original(lambda m: bool(m.embeds))
        fake.clock.advance(fake.config.token_lifetime + 1)  # 15 minutes later

        dm = fake.dm_channel(carol.user)
        late = await fake.wait_for(lambda: next(iter(dm_messages(fake, dm)), None), timeout=10)
        assert late.embeds[0].get("title") == ui.RESULT_TITLE
        assert jpeg_size(late.attachments[0].data) == (512, 512)
        # Only the DM: never a channel of the group or anywhere else.
        assert bot_posts(fake) == [f"/channels/{dm.id}/messages"]


@pytest.mark.parametrize("command", ["imagine-quota", "imagine-history"])
async def test_closed_dms_keep_the_result_for_the_next_command(
    command: str, make_stack: StackFactory
) -> None:
    async with make_stack(fixed_duration=50.0) as stack:
        fake = stack.fake
        elsewhere = fake.add_foreign_channel()
        dave = fake.add_outsider(elsewhere, "dave", accepts_dms=False)
        first = await stack.imagine(dave, "a slow storm", "512*512", channel=elsewhere)
        await first.wait_original(lambda m: bool(m.embeds))
        fake.clock.advance(fake.config.token_lifetime + 1)
        await fake.wait_for_call("POST", CHANNEL_POSTS, lambda c: c.status == 403, timeout=10)
        pending = stack.bot.generation.kept_results
        assert pending is not None
        # The job ends right after keeping its result.
        jobs = [t for t in asyncio.all_tasks() if t.get_name().startswith("job-")]
        if jobs:
            await asyncio.wait(jobs, timeout=10)
        assert await kept_count(stack, dave.id) == 1

        later = await fake.invoke_slash(elsewhere, dave, command)
        shown = await fake.wait_for(
            lambda: next((m for m in later.followups() if KEPT_NOTE in m.content), None),
            timeout=10,
        )
        assert shown.ephemeral
        assert shown.embeds[0].get("title") == ui.RESULT_TITLE
        assert jpeg_size(shown.attachments[0].data) == (512, 512)
        assert await kept_count(stack, dave.id) == 0  # taken before it was shown
        assert dm_messages(fake, fake.dm_channel(dave.user)) == []


@pytest.mark.stack(settings={"blocked_words": "kraken, sea monster"})
async def test_bot_wide_blocked_words_apply_where_no_server_rules_do(stack: LocalStack) -> None:
    fake = stack.fake
    elsewhere = fake.add_foreign_channel()
    erin = fake.add_outsider(elsewhere, "erin")
    refused = await stack.imagine(erin, "a Kraken attacks", "512*512", channel=elsewhere)
    reply = await private_refusal(refused)
    assert "blocked word" in reply.content
    # In the server that installed the bot its own rules apply (no blocked words set there).
    allowed = await stack.imagine(stack.alice, "a kraken in a bathtub", "512*512")
    assert title(await stack.wait_result(allowed)) == ui.RESULT_TITLE


@pytest.mark.stack(settings={"user_installs_enabled": False})
async def test_user_installs_switched_off_refuse_politely(stack: LocalStack) -> None:
    fake = stack.fake
    elsewhere = fake.add_foreign_channel()
    frank = fake.add_outsider(elsewhere, "frank")
    reply = await private_refusal(
        await stack.imagine(frank, "a teapot", "512*512", channel=elsewhere))
    assert "installed to your account" in reply.content
    assert stack.mock.stats.submits == 0
    # The server install works as before.
    done = await stack.imagine(stack.alice, "a teapot", "512*512")
    assert title(await stack.wait_result(done)) == ui.RESULT_TITLE


@pytest.mark.stack(settings={"user_install_daily_cap": 1})
async def test_user_install_daily_cap(stack: LocalStack) -> None:
    fake = stack.fake
    elsewhere = fake.add_foreign_channel()
    gina = fake.add_outsider(elsewhere, "gina")
    first = await stack.imagine(gina, "one", "512*512", channel=elsewhere)
    assert title(await stack.wait_result(first)) == ui.RESULT_TITLE
    reply = await private_refusal(await stack.imagine(gina, "two", "512*512", channel=elsewhere))
    assert "1 image for today" in reply.content


async def test_synced_commands_say_where_they_may_be_installed(stack: LocalStack) -> None:
    commands = {c["name"]: c for c in stack.fake.global_commands}
    for name in ("imagine", "imagine-edit", "imagine-quota", "imagine-history"):
        assert commands[name]["integration_types"] == [0, 1]
        assert commands[name]["contexts"] == [0, 1, 2]
    assert commands["imagine-admin"]["integration_types"] == [0]
    assert commands["imagine-admin"]["contexts"] == [0]
    elsewhere = stack.fake.add_foreign_channel()
    with pytest.raises(ValueError, match="cannot be installed"):
        await stack.fake.invoke_slash(
            elsewhere, stack.fake.add_outsider(elsewhere), "imagine-admin show")
