"""`/imagine`: a thin adapter from the slash command to `GenerationService`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.imaging import MAX_PROMPT_CHARS
from bot.interactions.choices import size_suggestions
from bot.interactions.components.buttons import DYNAMIC_ITEMS

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create an image from a text prompt")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    @app_commands.describe(
        prompt="What to draw. Qwen-Image is good at posters with legible text.",
        size="A shape such as Portrait, or your own width*height (each side 256 to 1536)",
    )
    async def imagine(
        self,
        interaction: discord.Interaction[ImagineBot],
        prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
        size: str | None = None,
    ) -> None:
        await self.bot.generation.handle(interaction, prompt, size)

    @imagine.autocomplete("size")
    async def size_autocomplete(
        self, interaction: discord.Interaction[ImagineBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return size_suggestions(current)


async def setup(bot: ImagineBot) -> None:
    bot.add_dynamic_items(*DYNAMIC_ITEMS)
    await bot.add_cog(Imagine(bot))


async def teardown(bot: ImagineBot) -> None:
    bot.remove_dynamic_items(*DYNAMIC_ITEMS)
