"""Where an interaction happened and whose rules apply, from Discord's own fields.

Discord says where a command was used (`context`: 0 a server, 1 the bot's own DM, 2 a private
channel — a DM between members or a group DM) and who authorised it
(`authorizing_integration_owners`: "0" a server install, with "0" as its value in the bot's DM;
"1" the member's own install). Whether the bot is a member of a server is what its guild cache
knows. A channel's class says neither: discord.py builds a `DMChannel` for every type-1 channel,
the bot's DM and a DM between two members alike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

import discord

from bot.jobs.model import Install

# Discord's interaction context types.
GUILD_CONTEXT: Final = 0
BOT_DM_CONTEXT: Final = 1
PRIVATE_CHANNEL_CONTEXT: Final = 2
# Discord's application integration types, the keys of `authorizing_integration_owners`.
GUILD_INSTALL: Final = 0
USER_INSTALL: Final = 1


class Place(enum.Enum):
    """Where the app was used, which decides whose rules apply and where the bot may post."""

    SERVER = "server"  # a server the bot is a member of
    BOT_DM = "bot_dm"  # the member's DM with the bot
    PRIVATE_CHANNEL = "private_channel"  # a DM between members or a group DM: never the bot's
    FOREIGN_SERVER = "foreign_server"  # a server the bot is not a member of

    @property
    def install(self) -> Install:
        if self is Place.SERVER:
            return Install.GUILD
        if self is Place.BOT_DM:
            return Install.DIRECT
        return Install.USER

    @property
    def bot_can_post(self) -> bool:
        """The bot can post here with its own token (not only through the interaction)."""
        return self in (Place.SERVER, Place.BOT_DM)


def decide_place(
    *,
    context: int | None,
    guild_id: int | None,
    bot_is_member: bool,
    owners: Mapping[int, int],
) -> Place:
    """The place from Discord's fields: `context` (None when Discord sent none), the
    interaction's `guild_id`, whether the bot's guild cache has that guild, and
    `authorizing_integration_owners` (integration type → guild or user id)."""
    if guild_id is not None:  # a server's channel (context 0): its rules where the bot is
        return Place.SERVER if bot_is_member else Place.FOREIGN_SERVER
    if context == BOT_DM_CONTEXT:
        return Place.BOT_DM
    if context == PRIVATE_CHANNEL_CONTEXT:
        return Place.PRIVATE_CHANNEL
    # No context (or a server's without a server): what the owners prove, and where they prove
    # nothing, a place where the bot does not post (a late result then goes by DM, which is the
    # bot's DM anyway).
    if owners.get(GUILD_INSTALL) == 0:  # a server install's key is "0" only in the bot's DM
        return Place.BOT_DM
    return Place.PRIVATE_CHANNEL


def context_of(interaction: discord.Interaction) -> int | None:
    """Discord's `context` as discord.py parsed it (an `AppCommandContext` with one flag set;
    none set when the payload had no `context`)."""
    seen = interaction.context
    if seen.guild:
        return GUILD_CONTEXT
    if seen.dm_channel:
        return BOT_DM_CONTEXT
    if seen.private_channel:
        return PRIVATE_CHANNEL_CONTEXT
    return None


def place_of(interaction: discord.Interaction) -> Place:
    """Where `interaction` happened (see `decide_place`)."""
    guild_id = interaction.guild_id
    # discord.py makes up a stand-in guild for servers it is not in; the cache knows better.
    bot_is_member = guild_id is not None and interaction.client.get_guild(guild_id) is not None
    return decide_place(
        context=context_of(interaction),
        guild_id=guild_id,
        bot_is_member=bot_is_member,
        owners=owners_of(interaction),
    )


def owners_of(interaction: discord.Interaction) -> Mapping[int, int]:
    """`authorizing_integration_owners` (integration type → guild or user id). discord.py 2.7
    keeps the mapping private and exposes only `is_guild_integration()` (False in every DM, so
    blind to the bot DM's "0": "0") and `is_user_integration()`; those are the fallback."""
    owners = getattr(interaction, "_integration_owners", None)
    if isinstance(owners, dict):
        return {int(kind): int(owner) for kind, owner in owners.items()}
    found: dict[int, int] = {}
    if interaction.is_user_integration():
        found[USER_INSTALL] = interaction.user.id
    if interaction.is_guild_integration() and interaction.guild_id is not None:
        found[GUILD_INSTALL] = interaction.guild_id
    return found
