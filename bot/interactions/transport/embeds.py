"""Wording's cards in Discord's form: `to_embed` is the one place a card becomes a
`discord.Embed`, and `NO_MENTIONS` the allowed-mentions every message the bot sends uses.

The card is carried over as it is: nothing is cut or checked here, so Discord's limits (25
fields, 6,000 characters) are the wording's to keep, as they were when it built embeds itself.
"""

from __future__ import annotations

from typing import Final

import discord

from bot.wording.cards import Card

# Mentions in the bot's messages render as names and ping nobody.
NO_MENTIONS: Final = discord.AllowedMentions.none()


def to_embed(card: Card) -> discord.Embed:
    embed = discord.Embed(
        title=card.title,
        description=card.description,
        colour=None if card.colour is None else discord.Colour(card.colour),
    )
    for field in card.fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    if card.footer is not None:
        embed.set_footer(text=card.footer)
    if card.image is not None:
        embed.set_image(url=f"attachment://{card.image}")
    return embed
