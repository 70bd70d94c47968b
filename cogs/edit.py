"""`/imagine-edit`: a thin adapter from the slash command to the Edit flow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.imaging import MAX_PROMPT_CHARS
from bot.interactions.edit_flow import EditFlows

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot


class ImagineEdit(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine-edit", description="Change an image of yours by words")
    # Like /imagine: the upload arrives with the interaction, so it works wherever the app is.
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        image="A PNG, JPEG or WebP image (up to 10 MB and 4 megapixels)",
        instruction="What should change, e.g. 'make it night time'",
    )
    async def imagine_edit(
        self,
        interaction: discord.Interaction[ImagineBot],
        image: discord.Attachment,
        instruction: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
    ) -> None:
        await EditFlows(self.bot.generation, self.bot.settings).edit_upload(
            interaction, image, instruction
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(ImagineEdit(bot))
