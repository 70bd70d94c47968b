"""Results kept for a member who could not be reached (user-installed app, interaction token
expired, DMs closed): shown privately at their next command, then forgotten."""

from __future__ import annotations

import json
import logging

import discord

from bot.interactions.attachments import image_file, releasing
from bot.storage.pending_deliveries import PendingDeliveries, PendingDelivery

log = logging.getLogger(__name__)

KEPT_NOTE = "Here is an image from earlier that I could not deliver at the time:"


async def show_pending(interaction: discord.Interaction, pending: PendingDeliveries | None) -> None:
    """Send this member's kept results as ephemeral follow-ups (the interaction must already be
    answered with a message of its own, so each follow-up is a new message)."""
    if pending is None:
        return
    try:
        waiting = await pending.take(interaction.user.id)
    except Exception:  # shown next time instead; the command itself was answered
        log.warning("could not read kept results", exc_info=True)
        return
    for index, item in enumerate(waiting):
        embed = discord.Embed.from_dict(json.loads(item.embed_json))
        files = []
        if item.image is not None and item.filename:
            files = [image_file(item.image, item.filename, spoiler=item.spoiler)]
        try:
            with releasing(files):
                await interaction.followup.send(
                    KEPT_NOTE, embed=embed, files=files, ephemeral=True,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
        except Exception:
            log.warning("could not show kept results; keeping them", exc_info=True)
            await _keep_again(pending, waiting[index:])
            return


async def _keep_again(pending: PendingDeliveries, items: list[PendingDelivery]) -> None:
    for item in items:
        image = None if item.image is None or not item.filename else (
            item.image, item.filename, item.spoiler)
        try:
            await pending.keep(item.user_id, item.embed_json, image)
        except Exception:
            log.warning("a kept result was lost", exc_info=True)
