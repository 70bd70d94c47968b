"""`/imagine`: a thin adapter from the slash command to `GenerationService`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.imaging import MAX_PROMPT_CHARS, SIZE_PRESETS, InvalidSizeError, parse_size
from bot.interactions.components.buttons import DYNAMIC_ITEMS

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot


def size_suggestions(current: str) -> list[app_commands.Choice[str]]:
    """Presets matching what was typed, plus the typed text itself when it is a valid W*H."""
    typed = current.strip()
    choices: list[app_commands.Choice[str]] = []
    if typed:
        try:
            size = parse_size(typed)
        except InvalidSizeError:
            pass
        else:
            choices.append(app_commands.Choice(name=f"Custom ({size})", value=size.wire))
    needle = typed.lower()
    for preset in SIZE_PRESETS:
        if not needle or needle in preset.label.lower() or needle in preset.key:
            choices.append(app_commands.Choice(name=preset.label, value=preset.key))
    return choices[:25]


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
