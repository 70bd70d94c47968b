"""Results kept for a member who could not be reached (user-installed app, interaction token
expired, DMs closed): shown privately at their next command, then forgotten."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import discord

from bot.batching import Batcher
from bot.interactions.transport.attachments import image_file, releasing
from bot.jobs.model import ImageFile
from bot.storage.repositories.kept_results import KeptResults, PendingDelivery

log = logging.getLogger(__name__)

KEPT_NOTE = "Here is an image from earlier that I could not deliver at the time:"


class KeptResultLookups:
    """"Has this member results kept for them?", asked for every admitted job: the questions
    asked meanwhile are answered by one query (a burst of 1,000 jobs costs a few, not 1,000)."""

    def __init__(self, kept_results: KeptResults) -> None:
        self._kept_results = kept_results
        self._lookups: Batcher[int, bool] = Batcher(self._members_waiting, name="kept-results")

    async def has_results(self, user_id: int) -> bool:
        try:
            return await self._lookups.submit(user_id)
        except Exception:  # only kept results wait; the new image must not
            log.warning("could not read kept results", exc_info=True)
            return False

    async def close(self) -> None:
        await self._lookups.close()

    async def _members_waiting(self, user_ids: Sequence[int]) -> list[bool]:
        waiting = await self._kept_results.members_waiting(user_ids)
        return [user_id in waiting for user_id in user_ids]


async def show_kept_results(
    interaction: discord.Interaction, kept_results: KeptResults | None
) -> None:
    """Send this member's kept results as ephemeral follow-ups (the interaction must already be
    answered with a message of its own, so each follow-up is a new message)."""
    if kept_results is None:
        return
    try:
        waiting = await kept_results.take(interaction.user.id)
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
            await _keep_again(kept_results, waiting[index:])
            return


async def _keep_again(kept_results: KeptResults, items: list[PendingDelivery]) -> None:
    for item in items:
        image = None if item.image is None or not item.filename else ImageFile(
            item.image, item.filename, item.spoiler)
        try:
            await kept_results.keep(item.user_id, item.embed_json, image)
        except Exception:
            log.warning("a kept result was lost", exc_info=True)
