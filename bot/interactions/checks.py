"""Who may do what: the one place permission checks live (commands, buttons and cogs use these).

Moderators (Manage Server) run `/imagine-admin` and are never locked out by bans or the channel
allow-list; the requester or anyone with Manage Messages may cancel or delete a job.
"""

from __future__ import annotations

import discord


def is_moderator(interaction: discord.Interaction) -> bool:
    """Manage Server in a server (never in DMs)."""
    return interaction.guild_id is not None and interaction.permissions.manage_guild


def may_manage_job(interaction: discord.Interaction, owner_id: int) -> bool:
    """The requester, or a member allowed to manage messages in this channel."""
    return interaction.user.id == owner_id or interaction.permissions.manage_messages


def member_role_ids(interaction: discord.Interaction) -> tuple[int, ...]:
    """The roles limits are computed from (none outside a server)."""
    user = interaction.user
    return tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()


def guild_of(interaction: discord.Interaction) -> int:
    """The server of a server-only command (`guild_only` and the cog's check guarantee one)."""
    if interaction.guild_id is None:
        raise RuntimeError("a server-only command ran outside a server")
    return interaction.guild_id


def guild_and_actor(interaction: discord.Interaction) -> tuple[int, int]:
    """(server, acting moderator): the first two arguments of every change `GuildAdmin` makes."""
    return guild_of(interaction), interaction.user.id
