"""Where an interaction happened, from Discord's fields: every combination of `context`, the
guild id, the bot's membership and `authorizing_integration_owners`, and discord.py's parsing."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any
from unittest.mock import MagicMock

import discord
import pytest
from discord.app_commands import AppCommandContext

from bot.interactions.places import (
    BOT_DM_CONTEXT,
    GUILD_CONTEXT,
    PRIVATE_CHANNEL_CONTEXT,
    Place,
    context_of,
    decide_place,
    owners_of,
    place_of,
)
from bot.interactions.requests import bot_is_present, install_of
from bot.jobs.model import Install

GUILD, USER = 555, 77
CONTEXTS = (GUILD_CONTEXT, BOT_DM_CONTEXT, PRIVATE_CHANNEL_CONTEXT, None)
OWNERS: tuple[Mapping[int, int], ...] = (
    {},
    {0: GUILD},  # the server's install
    {0: 0},  # a server install, used in the bot's DM
    {1: USER},  # the member's own install
    {0: GUILD, 1: USER},
    {0: 0, 1: USER},
)


def expected(
    context: int | None, guild_id: int | None, member: bool, owners: Mapping[int, int]
) -> Place:
    """The rule, written out: a guild id means a server, whose rules apply where the bot is a
    member; otherwise context 1 is the bot's DM and 2 a private channel; without a context only
    a server install's "0" proves the bot's DM."""
    if guild_id is not None:
        return Place.SERVER if member else Place.FOREIGN_SERVER
    if context == 1 or (context not in (1, 2) and owners.get(0) == 0):
        return Place.BOT_DM
    return Place.PRIVATE_CHANNEL


@pytest.mark.parametrize(
    ("context", "guild_id", "member", "owners"),
    list(itertools.product(CONTEXTS, (None, GUILD), (False, True), OWNERS)),
)
def test_every_combination_of_fields(
    context: int | None, guild_id: int | None, member: bool, owners: Mapping[int, int]
) -> None:
    place = decide_place(
        context=context, guild_id=guild_id, bot_is_member=member, owners=owners)
    assert place is expected(context, guild_id, member, owners)


@pytest.mark.parametrize(
    ("place", "install", "can_post"),
    [
        (Place.SERVER, Install.GUILD, True),
        (Place.BOT_DM, Install.DIRECT, True),
        (Place.PRIVATE_CHANNEL, Install.USER, False),
        (Place.FOREIGN_SERVER, Install.USER, False),
    ],
)
def test_each_place_has_its_rules_and_says_whether_the_bot_posts(
    place: Place, install: Install, can_post: bool
) -> None:
    assert place.install is install and place.bot_can_post is can_post


def test_the_cases_the_issue_names() -> None:
    # The app in a 1:1 DM between two members: context 2, authorised by the member's install.
    assert decide_place(
        context=2, guild_id=None, bot_is_member=False, owners={1: USER}) is Place.PRIVATE_CHANNEL
    # The bot's own DM, through the server install or the member's own.
    assert decide_place(
        context=1, guild_id=None, bot_is_member=False, owners={0: 0}) is Place.BOT_DM
    assert decide_place(
        context=1, guild_id=None, bot_is_member=False, owners={1: USER}) is Place.BOT_DM
    # A server without the bot, through the member's install.
    assert decide_place(
        context=0, guild_id=GUILD, bot_is_member=False, owners={1: USER}
    ) is Place.FOREIGN_SERVER


def interaction_with(
    *,
    context: list[int],
    guild_id: int | None,
    in_cache: bool,
    owners: dict[int, int] | None,
    channel: Any = None,
) -> discord.Interaction:
    """A stand-in with what discord.py parses from a payload: `context` as it builds it
    (`AppCommandContext._from_value`), the private owners mapping, the guild cache."""
    interaction = MagicMock(spec=discord.Interaction)
    interaction.context = AppCommandContext._from_value(context)  # type: ignore[arg-type]
    interaction.guild_id = guild_id
    interaction.channel = channel
    interaction.user = MagicMock(id=USER)
    interaction.client.get_guild.return_value = object() if in_cache else None
    interaction._integration_owners = owners
    return interaction


def test_discord_py_context_is_read_back_as_discord_sent_it() -> None:
    for value in (0, 1, 2):
        assert context_of(interaction_with(
            context=[value], guild_id=None, in_cache=False, owners={})) == value
    assert context_of(interaction_with(
        context=[], guild_id=None, in_cache=False, owners={})) is None


def test_a_dm_between_members_is_not_the_bots_dm_whatever_its_channel_class() -> None:
    # discord.py builds a DMChannel for any type-1 channel: the class proves nothing.
    dm = MagicMock(spec=discord.DMChannel)
    interaction = interaction_with(
        context=[2], guild_id=None, in_cache=False, owners={1: USER}, channel=dm)
    assert place_of(interaction) is Place.PRIVATE_CHANNEL
    assert install_of(interaction) is Install.USER and not bot_is_present(interaction)
    own = interaction_with(context=[1], guild_id=None, in_cache=False, owners={0: 0}, channel=dm)
    assert install_of(own) is Install.DIRECT and bot_is_present(own)


def test_the_guild_cache_decides_membership() -> None:
    present = interaction_with(context=[0], guild_id=GUILD, in_cache=True, owners={0: GUILD})
    absent = interaction_with(context=[0], guild_id=GUILD, in_cache=False, owners={1: USER})
    assert place_of(present) is Place.SERVER
    assert place_of(absent) is Place.FOREIGN_SERVER


def test_owners_fall_back_to_discord_pys_public_questions() -> None:
    interaction = interaction_with(context=[], guild_id=GUILD, in_cache=False, owners=None)
    interaction.is_user_integration.return_value = True
    interaction.is_guild_integration.return_value = True
    assert owners_of(interaction) == {1: USER, 0: GUILD}
    interaction.is_guild_integration.return_value = False
    assert owners_of(interaction) == {1: USER}
