"""`/imagine-quota`: any member sees what they have left and when it comes back (ephemeral)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.interactions.admin_presentation import quota_embed
from bot.interactions.checks import is_moderator, member_role_ids
from bot.interactions.replies import reply_ephemeral
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
    async def quota(self, interaction: discord.Interaction[ImagineBot]) -> None:
        user_id = interaction.user.id
        guild_id = interaction.guild_id or DIRECT_MESSAGES
        status = await self.admissions.quota_status(
            guild_id, user_id, member_role_ids(interaction)
        )
        banned = not is_moderator(interaction) and (  # moderators are never locked out
            interaction.guild_id is not None
            and await self.admissions.moderation.is_banned(guild_id, user_id)
        )
        await reply_ephemeral(interaction, embed=quota_embed(status, banned=banned))


async def setup(bot: ImagineBot) -> None:
    admissions = bot.services.admissions
    if admissions is None:
        log.warning("no limits service in this process; /imagine-quota is not available")
        return
    await bot.add_cog(Quota(admissions))
