"""`/imagine-quota`: any member sees what they have left and when it comes back (ephemeral)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions.admin_presentation import quota_embed
from bot.interactions.presentation import NO_MENTIONS
from bot.limits.gate import DIRECT_MESSAGES
from bot.limits.service import AdmissionService

if TYPE_CHECKING:
    from bot.interactions.app import ImagineBot

log = logging.getLogger(__name__)


class Quota(commands.Cog):
    def __init__(self, admissions: AdmissionService) -> None:
        self.admissions = admissions

    @app_commands.command(
        name="imagine-quota", description="How many images you have left, and when more come back"
    )
    async def quota(self, interaction: discord.Interaction) -> None:
        user = interaction.user
        guild_id = interaction.guild_id or DIRECT_MESSAGES
        # The same roles /imagine counts (bot.interactions.generation.request_from_interaction).
        role_ids = [r.id for r in user.roles] if isinstance(user, discord.Member) else []
        status = await self.admissions.quota_status(guild_id, user.id, role_ids)
        banned = (
            interaction.guild_id is not None
            and not interaction.permissions.manage_guild  # moderators are never locked out
            and await self.admissions.moderation.is_banned(guild_id, user.id)
        )
        await interaction.response.send_message(
            embed=quota_embed(status, banned=banned), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


async def setup(bot: ImagineBot) -> None:
    admissions = bot.services.admissions
    if admissions is None:
        log.warning("no limits service in this process; /imagine-quota is not available")
        return
    await bot.add_cog(Quota(admissions))
