"""Short ephemeral replies, and the one way unexpected errors reach a member (with an error id)."""

from __future__ import annotations

import logging

import discord

from bot.interactions.messages import describe_with_id, new_error_id
from bot.interactions.presentation import NO_MENTIONS

log = logging.getLogger(__name__)


async def reply_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer only the member, whether or not the interaction was already acknowledged."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def report_error(interaction: discord.Interaction, error: BaseException, where: str) -> str:
    """Log `error` with a fresh error id and tell the member a friendly line quoting it."""
    error_id = new_error_id()
    log.error("unhandled error in %s [error id %s]", where, error_id, exc_info=error)
    text = describe_with_id(error, error_id)
    try:
        await reply_ephemeral(interaction, text)
    except discord.HTTPException:
        log.warning("could not report error %s to the member", error_id, exc_info=True)
    return error_id
