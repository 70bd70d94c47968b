"""`/imagine-quota`: any member sees what they have left and when it comes back (ephemeral)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions.admin_presentation import quota_embed
from bot.interactions.presentation import NO_MENTIONS
from bot.limits.admission import AdmissionService

if TYPE_CHECKING:
    from bot.interactions.app import ImagineBot


class Quota(commands.Cog):
    def __init__(self, admissions: AdmissionService) -> None:
        self.admissions = admissions

    @app_commands.command(
        name="imagine-quota", description="How many images you have left, and when more come back"
    )
    async def quota(self, interaction: discord.Interaction) -> None:
        user = interaction.user
        # The same roles /imagine counts (bot.interactions.generation.request_from_interaction).
        role_ids = [r.id for r in user.roles] if isinstance(user, discord.Member) else []
        status = await self.admissions.quota_status(
            interaction.guild_id,
            user.id,
            role_ids,
            is_moderator=interaction.permissions.manage_guild,
        )
        await interaction.response.send_message(
            embed=quota_embed(status, banned=status.banned),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Quota(bot.services.admissions))
