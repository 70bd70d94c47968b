"""`request_from_interaction`: what admission learns about a request, from small fakes."""

from __future__ import annotations

from unittest.mock import MagicMock

import discord
from discord.app_commands import AppCommandContext

from bot.imaging import ImageSize
from bot.interactions.requests import request_from_interaction
from bot.jobs.model import Install


def interaction_in(channel: object, *, manage_guild: bool = False) -> discord.Interaction:
    member = MagicMock(spec=discord.Member)
    member.id = 42
    member.display_name = "Ada"
    member.roles = [MagicMock(id=7), MagicMock(id=8)]
    interaction = MagicMock(spec=discord.Interaction)
    interaction.user = member
    interaction.guild_id = 1
    interaction.channel_id = getattr(channel, "id", None)
    interaction.channel = channel
    interaction.permissions = discord.Permissions(manage_guild=manage_guild)
    # A server the bot is a member of, through its server install.
    interaction.context = AppCommandContext(guild=True)
    interaction.client.get_guild.return_value = object()
    interaction._integration_owners = {0: 1}
    return interaction


def test_a_thread_reports_its_parent_channel_for_the_allow_list() -> None:
    thread = MagicMock(spec=discord.Thread)
    thread.id, thread.parent_id = 500, 100
    thread.is_nsfw.return_value = True
    request = request_from_interaction(interaction_in(thread), "cat", ImageSize(512, 512))
    assert (request.channel_id, request.parent_channel_id) == (500, 100)
    assert request.channel_is_nsfw
    assert request.role_ids == (7, 8) and request.user_name == "Ada"


def test_a_plain_channel_has_no_parent_and_moderators_are_flagged() -> None:
    channel = MagicMock(spec=discord.TextChannel)
    channel.id = 100
    channel.is_nsfw.return_value = False
    request = request_from_interaction(
        interaction_in(channel, manage_guild=True), "cat", ImageSize(512, 512), reroll_of=9
    )
    assert request.parent_channel_id is None and not request.channel_is_nsfw
    assert request.is_moderator and request.reroll_of == 9


def test_in_a_dm_between_members_no_channel_or_server_counts() -> None:
    dm = MagicMock(spec=discord.DMChannel)  # discord.py's class for any type-1 channel
    dm.id = 300
    interaction = interaction_in(dm, manage_guild=True)
    interaction.guild_id = None
    interaction.context = AppCommandContext(private_channel=True)
    interaction._integration_owners = {1: 42}
    request = request_from_interaction(interaction, "cat", ImageSize(512, 512))
    assert request.install is Install.USER
    assert (request.guild_id, request.channel_id, request.role_ids) == (None, None, ())
    assert not request.is_moderator


def test_in_the_bots_own_dm_the_dm_is_the_channel() -> None:
    dm = MagicMock(spec=discord.DMChannel)
    dm.id = 301
    interaction = interaction_in(dm)
    interaction.guild_id = None
    interaction.context = AppCommandContext(dm_channel=True)
    interaction._integration_owners = {0: 0}
    request = request_from_interaction(interaction, "cat", ImageSize(512, 512))
    assert request.install is Install.DIRECT
    assert (request.guild_id, request.channel_id) == (None, 301)
