"""`/imagine-admin usage`: the text summary at once, then the chart edited into it.

The text (an embed) answers inside Discord's 3-second window and is what screen readers read;
the chart (`bot.reports.usage_chart`) is drawn off the event loop and added to the same message
as `attachment://usage.png`, with alt text. If drawing fails, the text stays and it is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Final

import discord

from bot.interactions.transport.attachments import image_file, releasing
from bot.interactions.transport.embeds import NO_MENTIONS, to_embed
from bot.interactions.transport.replies import reply_ephemeral
from bot.limits.admin import GuildAdmin, UsageHistory
from bot.reports.usage_chart import UsageChartData, UsageChartRenderer, alt_text
from bot.wording import admin_presentation as show

log = logging.getLogger(__name__)

CHART_FILENAME: Final = "usage.png"
NAME_LOOKUP_TIMEOUT: Final = 2.0  # members the cache lacks are fetched; never wait long for names


def chart_data(history: UsageHistory, names: Mapping[int, str]) -> UsageChartData:
    top = history.top_members_month
    return UsageChartData(
        days=history.days,
        daily_cap_usd=history.daily_cap_usd,
        top_members=[(names.get(user, str(user)), count) for user, count in top],
        month_label=f"{history.month_start:%B %Y}",
    )


async def member_names(guild: discord.Guild | None, user_ids: Sequence[int]) -> dict[int, str]:
    """Display names by id: from the cache, else fetched (briefly); ids nobody can resolve are
    left out, and the chart shows them as ids."""
    if guild is None:
        return {}
    names: dict[int, str] = {}
    missing = []
    for user_id in user_ids:
        member = guild.get_member(user_id)
        if member is None:
            missing.append(user_id)
        else:
            names[user_id] = member.display_name

    async def fetch(user_id: int) -> None:
        with contextlib.suppress(discord.HTTPException):  # left the server, or unknown
            names[user_id] = (await guild.fetch_member(user_id)).display_name

    if missing:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(fetch(user_id) for user_id in missing)), NAME_LOOKUP_TIMEOUT
            )
    return names


class UsageReplies:
    def __init__(self, guild_admin: GuildAdmin, renderer: UsageChartRenderer | None = None) -> None:
        self.guild_admin = guild_admin
        self.renderer = renderer or UsageChartRenderer()

    async def send(self, interaction: discord.Interaction, guild_id: int) -> None:
        report = await self.guild_admin.usage(guild_id)
        history = await self.guild_admin.usage_history(guild_id)
        card = show.usage_card(report).with_fields(*show.usage_history_fields(history))
        await reply_ephemeral(interaction, embed=to_embed(card))
        try:
            names = await member_names(interaction.guild, [u for u, _ in history.top_members_month])
            data = chart_data(history, names)
            png = await self.renderer.render(data)
            chart = image_file(png, CHART_FILENAME, description=alt_text(data))
            with_chart = to_embed(card.with_image(CHART_FILENAME))
            with releasing([chart]) as files:
                await interaction.edit_original_response(
                    embed=with_chart, attachments=files, allowed_mentions=NO_MENTIONS
                )
        except Exception:  # the text is already there; the chart is a bonus
            log.exception("could not add the usage chart for guild %s", guild_id)
