"""`/imagine-quota`: any member sees what they have left and when it comes back (ephemeral)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions.checks import is_moderator, member_role_ids
from bot.interactions.kept_results import show_kept_results
from bot.interactions.requests import bot_is_present
from bot.interactions.transport.acknowledge import uses_database
from bot.interactions.transport.embeds import to_embed
from bot.interactions.transport.replies import reply_ephemeral
from bot.limits.admission import AdmissionService
from bot.storage.repositories.kept_results import KeptResults
from bot.wording.admin_presentation import quota_card

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot


class Quota(commands.Cog):
    def __init__(
        self, admissions: AdmissionService, kept_results: KeptResults | None = None
    ) -> None:
        self.admissions = admissions
        self.kept_results = kept_results

    @uses_database
    @app_commands.command(
        name="imagine-quota", description="How many images you have left, and when more come back"
    )
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def quota(self, interaction: discord.Interaction[ImagineBot]) -> None:
        if bot_is_present(interaction):
            status = await self.admissions.quota_status(
                interaction.guild_id,
                interaction.user.id,
                member_role_ids(interaction),
                is_moderator=is_moderator(interaction),
            )
        else:  # the user-installed app where the bot is not: bot-wide limits
            status = await self.admissions.quota_status(None, interaction.user.id)
        await reply_ephemeral(interaction, embed=to_embed(quota_card(status, banned=status.banned)))
        await show_kept_results(interaction, self.kept_results)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Quota(bot.services.admissions, bot.generation.kept_results))
