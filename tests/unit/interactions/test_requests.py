"""`request_from_interaction`: what admission learns about a request, from small fakes."""

from __future__ import annotations

from unittest.mock import MagicMock

import discord

from bot.imaging import ImageSize
from bot.interactions.requests import request_from_interaction


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
