"""Slash-command sync is explicit and hash-based: a restart with the same commands syncs nothing.

Runs the real bot against the fake Discord, which records every PUT of the command list.
"""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from bot.app.bot import COMMAND_HASH_KEY, sync_commands
from bot.config import Secret
from fakes.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

GLOBAL_SYNC = ("PUT", "/applications/{application_id}/commands")
GUILD_SYNC = ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")


def command_names(commands: list[dict[str, object]]) -> set[object]:
    return {command["name"] for command in commands}


async def test_first_start_syncs_and_a_restart_with_the_same_tree_does_not(
    stack: LocalStack,
) -> None:
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 1
    assert "imagine" in command_names(stack.fake.global_commands)
    stored = await stack.services.state.get(COMMAND_HASH_KEY)
    assert stored == stack.bot.command_tree_hash()

    await stack.restart_bot()
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 1  # same tree, same hash: no call
    assert await stack.bot.sync_if_changed() is False
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 1

    # The /imagine command works after the restart without a re-sync.
    interaction = await stack.imagine(stack.alice, "still here", "512*512")
    assert (await stack.wait_result(interaction)).attachments


async def test_a_changed_tree_syncs_once_more(stack: LocalStack) -> None:
    @app_commands.command(name="ping", description="Check the bot is alive")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong", ephemeral=True)

    before = stack.bot.command_tree_hash()
    stack.bot.tree.add_command(ping)
    assert stack.bot.command_tree_hash() != before

    assert await stack.bot.sync_if_changed() is True
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 2
    assert {"imagine", "ping"} <= command_names(stack.fake.global_commands)
    assert await stack.bot.sync_if_changed() is False
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 2


async def test_the_hash_is_stable_across_restarts(stack: LocalStack) -> None:
    first = stack.bot.command_tree_hash()
    await stack.restart_bot()
    assert stack.bot.command_tree_hash() == first


async def test_sync_command_registers_guild_commands(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stack.with_settings(
        discord_api_base_url=stack.fake.rest_base, discord_gateway_url=stack.fake.gateway_url
    )
    assert await sync_commands(settings, guild_id=stack.guild.id) == 0

    (call,) = stack.fake.calls_to(*GUILD_SYNC)
    assert call.path.endswith(f"/guilds/{stack.guild.id}/commands")
    assert "imagine" in command_names(stack.fake.guild_commands[stack.guild.id])
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 1  # only the bot's own start-up sync
    assert f"to guild {stack.guild.id}: " in capsys.readouterr().out


async def test_global_sync_command_stores_the_hash_so_the_next_start_skips_syncing(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.services.state.set(COMMAND_HASH_KEY, "stale")
    settings = stack.with_settings(
        discord_api_base_url=stack.fake.rest_base, discord_gateway_url=stack.fake.gateway_url
    )
    assert await sync_commands(settings) == 0
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 2
    assert "to all servers" in capsys.readouterr().out

    await stack.restart_bot()
    assert len(stack.fake.calls_to(*GLOBAL_SYNC)) == 2


async def test_a_wrong_token_fails_with_a_message_not_a_traceback(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stack.with_settings(
        discord_api_base_url=stack.fake.rest_base,
        discord_token=Secret("not-the-token"),
    )
    assert await sync_commands(settings, guild_id=stack.guild.id) == 2
    assert "Discord rejected DISCORD_TOKEN." in capsys.readouterr().out
    assert not stack.fake.calls_to(*GUILD_SYNC)
