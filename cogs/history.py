"""`/imagine-history`: a member's own recent images, ephemeral and paginated. A thin adapter.

It also listens for deleted messages, so history stops linking to images that are gone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions.components.history_pages import MemberHistoryButton, member_history_page
from bot.interactions.kept_results import show_kept_results
from bot.interactions.transport.replies import reply_ephemeral
from bot.storage.repositories.kept_results import KeptResults
from bot.storage.repositories.member_history import MemberHistory

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot

log = logging.getLogger(__name__)


class History(commands.Cog):
    def __init__(self, history: MemberHistory, kept_results: KeptResults | None) -> None:
        self.history = history
        self.kept_results = kept_results  # results kept while the member's DMs were closed

    @app_commands.command(name="imagine-history", description="Your recent images, newest first")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(page="Page number (1 = newest)")
    async def show_history(
        self,
        interaction: discord.Interaction[ImagineBot],
        page: app_commands.Range[int, 1, 10_000] = 1,
    ) -> None:
        embed, view = await member_history_page(
            self.history, interaction.user.id, interaction.guild_id, page
        )
        await reply_ephemeral(interaction, embed=embed, view=view)
        await show_kept_results(interaction, self.kept_results)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._forget({payload.message_id})

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(
        self, payload: discord.RawBulkMessageDeleteEvent
    ) -> None:
        await self._forget(payload.message_ids)

    async def _forget(self, message_ids: Collection[int]) -> None:
        try:
            await self.history.forget_messages(message_ids)
        except Exception:  # a missed deletion only leaves a dead link behind
            log.warning("could not forget deleted messages", exc_info=True)


async def setup(bot: ImagineBot) -> None:
    bot.add_dynamic_items(MemberHistoryButton)
    await bot.add_cog(History(bot.services.member_history, bot.generation.kept_results))


async def teardown(bot: ImagineBot) -> None:
    bot.remove_dynamic_items(MemberHistoryButton)
