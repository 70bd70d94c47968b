"""End to end: moderators change limits and rules with /imagine-admin; members feel them in
/imagine and see them in /imagine-quota. Real bot, fake Discord, mock Novita, SQLite."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from fakes.discord.server import FakeChannel, FakeInteraction, FakeMember, FakeMessage
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import private_refusal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60), pytest.mark.stack(fixed_duration=10.0)]

RELATIVE_TIME = re.compile(r"<t:\d+:R>")
DEFER = 5
MESSAGE = 4


async def admin(
    stack: LocalStack,
    command: str,
    options: dict[str, Any] | None = None,
    *,
    member: FakeMember | None = None,
) -> FakeMessage:
    """Run `/imagine-admin <command>` (as the admin by default); return the ephemeral reply."""
    interaction = await stack.fake.invoke_slash(
        stack.channel, member or stack.admin, f"imagine-admin {command}", options or {}
    )
    return await ephemeral_reply(interaction)


async def ephemeral_reply(interaction: FakeInteraction) -> FakeMessage:
    assert await interaction.wait_acknowledged() == MESSAGE  # inside the fake's 3 s window
    message = await interaction.wait_original()
    assert message.ephemeral
    assert message.allowed_mentions is not None
    assert message.allowed_mentions.get("parse") == []
    return message


def text_of(message: FakeMessage) -> str:
    """Content plus every embed text, for assertions on what a person reads."""
    parts = [message.content]
    for embed in message.embeds:
        parts += [embed.get("title", ""), embed.get("description", "")]
        for item in embed.get("fields", []):
            parts += [item["name"], item["value"]]
        parts.append(embed.get("footer", {}).get("text", ""))
    return "\n".join(parts)


def fields(message: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0].get("fields", [])}


async def imagine_ok(
    stack: LocalStack, member: FakeMember, prompt: str, channel: FakeChannel | None = None
) -> FakeMessage:
    interaction = await stack.imagine(member, prompt, "512*512", channel=channel)
    assert await interaction.wait_acknowledged() == DEFER, text_of(
        interaction.original_message() or _missing()
    )
    message = await stack.wait_result(interaction)
    assert message.attachments, text_of(message)
    await jobs_settled(stack)
    return message


async def jobs_settled(stack: LocalStack) -> None:
    """Wait until every running job has also closed its ledger row, which happens just after
    its message shows the result (so counts such as "running" and "failed" are final)."""
    await stack.bot.generation.jobs.wait_idle()


async def imagine_refused(
    stack: LocalStack, member: FakeMember, prompt: str, channel: FakeChannel | None = None
) -> str:
    """The member is refused at once, ephemerally, and nothing reaches Novita."""
    tasks_before = len(stack.mock.tasks)
    interaction = await stack.imagine(member, prompt, "512*512", channel=channel)
    reply = await private_refusal(interaction)
    assert len(stack.mock.tasks) == tasks_before
    return reply.content


def _missing() -> FakeMessage:
    raise AssertionError("the bot did not answer")


# ---- limits -------------------------------------------------------------------------------------


async def test_moderator_sets_a_limit_and_the_next_imagine_is_refused_naming_it(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.limits.admin")
    reply = await admin(stack, "limits set", {"limit": "per_window", "value": 1})
    assert reply.content == (
        "Images per window (each member) is now **1** for this server (was unlimited)."
    )
    assert any(
        f"user {stack.admin.id} changed limit per_window 0 (default) → 1" in r.getMessage()
        for r in caplog.records
    )

    await imagine_ok(stack, stack.alice, "a lighthouse")
    refusal = await imagine_refused(stack, stack.alice, "another lighthouse")
    assert refusal.startswith("Sorry, you can start 1 image every 10 minutes.")
    assert RELATIVE_TIME.search(refusal), refusal
    await imagine_ok(stack, stack.bob, "bob is counted on his own")

    reply = await admin(stack, "limits reset", {"limit": "per_window"})
    assert reply.content == (
        "Images per window (each member) now follows the default: **unlimited**."
    )
    await imagine_ok(stack, stack.alice, "allowed again")


async def test_spend_cap_and_daily_quota_refusals_say_when_to_try_again(
    stack: LocalStack,
) -> None:
    await admin(stack, "limits set", {"limit": "guild_spend_usd", "value": 0.04})
    await admin(stack, "limits set", {"limit": "user_daily", "value": 1})
    await imagine_ok(stack, stack.alice, "first")
    refusal = await imagine_refused(stack, stack.alice, "second")
    assert refusal.startswith("Sorry, you have used your 1 image for today.")
    assert RELATIVE_TIME.search(refusal)
    await imagine_ok(stack, stack.bob, "the last two cents")
    refusal = await imagine_refused(stack, stack.mod, "over the cap")
    assert refusal.startswith("Sorry, this server has reached its spending limit for today.")
    assert RELATIVE_TIME.search(refusal)


async def test_members_without_manage_server_are_refused(stack: LocalStack) -> None:
    for member in (stack.alice, stack.mod):  # mod has Manage Messages, not Manage Server
        reply = await admin(
            stack, "limits set", {"limit": "user_daily", "value": 0}, member=member
        )
        assert "You need the Manage Server permission" in reply.content
        reply = await admin(stack, "show", member=member)
        assert "permission" in reply.content and not reply.embeds
    guild_admin = stack.services.guild_admin
    assert (await guild_admin.guild_config(stack.guild.id)).user_daily_quota is None
    in_dms = await stack.fake.invoke_slash(
        stack.fake.dm_channel(stack.admin), stack.admin, "imagine-admin show"
    )
    assert "permission" in (await ephemeral_reply(in_dms)).content


async def test_commands_are_registered_for_moderators_only(stack: LocalStack) -> None:
    commands = {c["name"]: c for c in stack.fake.global_commands}
    group = commands["imagine-admin"]
    assert int(group["default_member_permissions"]) == 1 << 5  # Manage Server
    assert group.get("contexts") == [0] or group.get("dm_permission") is False

    def names(options: list[dict[str, Any]], prefix: str = "") -> list[str]:
        found = []
        for option in options:
            if option["type"] in (1, 2):
                assert re.fullmatch(r"[a-z_-]{1,32}", option["name"]), option["name"]
                assert 1 <= len(option["description"]) <= 100
                found.append(prefix + option["name"])
                found += names(option.get("options", []), prefix + option["name"] + " ")
        return found

    assert set(names(group["options"])) >= {
        "show", "usage", "history", "nsfw", "limits set", "limits reset", "roles set",
        "roles clear", "roles list", "exempt add", "exempt remove", "exempt list", "words add",
        "words remove", "words list", "channels allow", "channels remove", "channels list",
        "users ban", "users unban", "users reset", "users bans",
    }
    assert "default_member_permissions" not in commands["imagine-quota"] or (
        commands["imagine-quota"]["default_member_permissions"] is None
    )


async def test_invalid_values_are_explained(stack: LocalStack) -> None:
    reply = await admin(stack, "limits set", {"limit": "window_minutes", "value": 0})
    assert reply.content == "The window must be at least 1 minute long."
    reply = await admin(stack, "limits set", {"limit": "user_daily", "value": 2.5})
    assert reply.content == "Images per day (each member) must be a whole number."
    reply = await admin(stack, "words add", {"word": "***"})
    assert reply.content.startswith("That word can't be blocked")
    reply = await admin(stack, "roles set", {"role": stack.mod_role})
    assert reply.content.startswith("Give at least one of")


async def test_show_lists_every_setting_with_its_source(stack: LocalStack) -> None:
    await admin(stack, "limits set", {"limit": "per_window", "value": 3})
    await admin(stack, "roles set", {"role": stack.mod_role, "daily": 50})
    await admin(stack, "exempt add", {"role": stack.mod_role})
    await admin(stack, "words add", {"word": "Dragon"})
    await admin(stack, "channels allow", {"channel": stack.channel})
    await admin(stack, "nsfw", {"policy": "spoiler"})
    reply = await admin(stack, "show")
    shown = fields(reply)
    members = shown["Limits for each member"]
    assert "Images per window (each member): **3** · server (default unlimited)" in members
    assert "Window length in minutes: **10 minutes** · default" in members
    assert "Images per day (whole server): **unlimited** · default" in shown[
        "Limits for the whole server"
    ]
    assert "no cap" in shown["Spend caps (estimated, per UTC day)"]
    assert shown["Role overrides (1)"] == f"<@&{stack.mod_role.id}>: per day 50"
    assert shown["Exempt roles (1)"] == f"<@&{stack.mod_role.id}>"
    assert shown["Channels"] == f"<#{stack.channel.id}>"
    assert shown["Blocked words"] == "1"
    assert shown["NSFW images"].startswith("spoiler")


# ---- moderation -------------------------------------------------------------------------------


async def test_blocked_word_refuses_until_removed(stack: LocalStack) -> None:
    reply = await admin(stack, "words add", {"word": "Dragon"})
    assert reply.content == "Blocked `dragon`."
    refusal = await imagine_refused(stack, stack.alice, "a red DRAGON over hills")
    assert refusal == "Sorry, your prompt contains a blocked word (dragon)."
    assert "dragon" in text_of(await admin(stack, "words list"))
    assert (await admin(stack, "words remove", {"word": "dragon"})).content == "Unblocked `dragon`."
    await imagine_ok(stack, stack.alice, "a red dragon over hills")


async def test_channel_allow_list(stack: LocalStack) -> None:
    other = stack.nsfw_channel
    await admin(stack, "channels allow", {"channel": other})
    refusal = await imagine_refused(stack, stack.alice, "a cat")
    assert refusal == f"Sorry, images can't be made in this channel; try <#{other.id}>."
    await imagine_ok(stack, stack.alice, "a cat", channel=other)
    await imagine_ok(stack, stack.admin, "moderators are never locked out")
    reply = await admin(stack, "channels remove", {"channel": other})
    assert "every channel again" in reply.content
    await imagine_ok(stack, stack.alice, "a cat")


async def test_ban_and_unban(stack: LocalStack) -> None:
    reply = await admin(stack, "users ban", {"member": stack.alice, "reason": "spam"})
    assert reply.content == f"<@{stack.alice.id}> can no longer make images in this server."
    assert (await imagine_refused(stack, stack.alice, "a cat")) == (
        "Sorry, you are not allowed to make images in this server."
    )
    quota = await ephemeral_reply(
        await stack.fake.invoke_slash(stack.channel, stack.alice, "imagine-quota")
    )
    assert "stopped you" in text_of(quota)
    bans = text_of(await admin(stack, "users bans"))
    assert f"<@{stack.alice.id}> by <@{stack.admin.id}>" in bans and "spam" in bans
    # A banned moderator still moderates and generates.
    await admin(stack, "users ban", {"member": stack.admin})
    assert "Banned from /imagine (2)" in text_of(await admin(stack, "users bans"))
    await imagine_ok(stack, stack.admin, "still fine")
    assert (await admin(stack, "users unban", {"member": stack.alice})).content.endswith(
        "can make images again."
    )
    await imagine_ok(stack, stack.alice, "a cat")


async def test_reset_usage_gives_images_back(make_stack: StackFactory) -> None:
    async with make_stack(
        fixed_duration=10.0, settings={"user_generations_per_window": 2}
    ) as stack:
        await imagine_ok(stack, stack.alice, "one")
        await imagine_ok(stack, stack.alice, "two")
        refusal = await imagine_refused(stack, stack.alice, "three")
        assert refusal.startswith("Sorry, you can start 2 images every 10 minutes.")
        reply = await admin(stack, "users reset", {"member": stack.alice})
        assert reply.content.startswith(f"Reset <@{stack.alice.id}>: 2 images no longer count")
        await imagine_ok(stack, stack.alice, "three")
