"""What admission learns about a request from the interaction that made it."""

from __future__ import annotations

import discord

from bot.imaging import ImageSize
from bot.interactions.checks import is_moderator, member_role_ids
from bot.interactions.places import place_of
from bot.jobs.model import Install, JobRequest


def install_of(interaction: discord.Interaction) -> Install:
    """Whose rules apply: a server the bot is a member of, the bot's own DM, or the
    user-installed app where the bot is not a member (a DM between members, a group DM, a
    server without the bot) — decided from Discord's fields (`bot.interactions.places`)."""
    return place_of(interaction).install


def bot_is_present(interaction: discord.Interaction) -> bool:
    """The bot can post here itself (not only through the interaction)."""
    return place_of(interaction).bot_can_post


def request_from_interaction(
    interaction: discord.Interaction,
    prompt: str,
    size: ImageSize,
    reroll_of: int | None = None,
) -> JobRequest:
    user = interaction.user
    channel = interaction.channel
    install = install_of(interaction)
    if install is Install.USER:
        # No server's rules apply where the bot is not a member: bot-wide rules, and nothing
        # of that server (roles, permissions, NSFW channels) counts.
        return JobRequest(
            guild_id=None, channel_id=None, user_id=user.id, prompt=prompt,
            size=size, user_name=user.display_name, reroll_of=reroll_of, install=install,
        )
    channel_is_nsfw = bool(
        channel is not None and hasattr(channel, "is_nsfw") and channel.is_nsfw()
    )
    return JobRequest(
        install=install,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=user.id,
        prompt=prompt,
        size=size,
        user_name=user.display_name,
        role_ids=member_role_ids(interaction),
        is_moderator=is_moderator(interaction),
        channel_is_nsfw=channel_is_nsfw,
        reroll_of=reroll_of,
        parent_channel_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
    )
