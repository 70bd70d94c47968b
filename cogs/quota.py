"""`/imagine-quota`: any member sees what they have left and when it comes back (ephemeral)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions.admin_presentation import quota_embed
from bot.interactions.checks import is_moderator, member_role_ids
from bot.interactions.replies import reply_ephemeral
from bot.limits.admission import AdmissionService

if TYPE_CHECKING:
    from bot.interactions.app import ImagineBot


class Quota(commands.Cog):
    def __init__(self, admissions: AdmissionService) -> None:
        self.admissions = admissions

    @app_commands.command(
        name="imagine-quota", description="How many images you have left, and when more come back"
    )
    async def quota(self, interaction: discord.Interaction[ImagineBot]) -> None:
        status = await self.admissions.quota_status(
            interaction.guild_id,
            interaction.user.id,
            member_role_ids(interaction),
            is_moderator=is_moderator(interaction),
        )
        await reply_ephemeral(interaction, embed=quota_embed(status, banned=status.banned))


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Quota(bot.services.admissions))
