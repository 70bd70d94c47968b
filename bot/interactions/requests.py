"""What admission learns about a request from the interaction that made it."""

from __future__ import annotations

import discord

from bot.imaging import ImageSize
from bot.interactions.checks import is_moderator, member_role_ids
from bot.limits.admission import JobRequest


def request_from_interaction(
    interaction: discord.Interaction,
    prompt: str,
    size: ImageSize,
    reroll_of: int | None = None,
) -> JobRequest:
    user = interaction.user
    channel = interaction.channel
    channel_is_nsfw = bool(
        channel is not None and hasattr(channel, "is_nsfw") and channel.is_nsfw()
    )
    return JobRequest(
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
