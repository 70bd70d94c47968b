"""`/imagine-admin history` pages and their Previous / Next buttons (restart-safe: the page and
the member filter live in the button's custom id)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.interactions import admin_presentation as show
from bot.interactions.checks import is_moderator
from bot.interactions.presentation import NO_MENTIONS
from bot.interactions.replies import reply_ephemeral
from bot.limits.admin import GuildAdmin

if TYPE_CHECKING:
    from bot.interactions.app import ImagineBot


async def history_page(
    guild_admin: GuildAdmin, guild_id: int, user_id: int | None, page: int
) -> tuple[discord.Embed, discord.ui.View | None]:
    """The embed for one page (past the last page: the last one) and its buttons."""
    found = await guild_admin.history(guild_id, user_id=user_id, page=page)
    pages = show.page_count(found)
    if page > pages and found.total:
        found = await guild_admin.history(guild_id, user_id=user_id, page=pages)
        page = pages
    return show.history_embed(found, user_id), history_view(user_id, page, pages)


class HistoryPageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine-admin:history:(?P<user>\d+):(?P<page>\d+):(?P<way>prev|next)",
):
    """Previous / Next on a history page."""

    def __init__(self, user_id: int, page: int, way: str, *, disabled: bool = False) -> None:
        self.user_id, self.page, self.way = user_id, page, way
        super().__init__(
            discord.ui.Button(
                label="Previous" if way == "prev" else "Next",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine-admin:history:{user_id}:{page}:{way}",
                disabled=disabled,
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(int(match["user"]), int(match["page"]), match["way"])

    async def callback(self, interaction: discord.Interaction) -> None:
        if not is_moderator(interaction):
            await reply_ephemeral(interaction, show.NOT_ALLOWED_HERE)
            return
        embed, view = await history_page(
            _bot(interaction).services.guild_admin,
            interaction.guild_id or 0,
            self.user_id or None,
            self.page,
        )
        await interaction.response.edit_message(
            embed=embed, view=view, allowed_mentions=NO_MENTIONS
        )


def history_view(user_id: int | None, page: int, pages: int) -> discord.ui.View | None:
    if pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(HistoryPageButton(user_id or 0, page - 1, "prev", disabled=page <= 1))
    view.add_item(HistoryPageButton(user_id or 0, page + 1, "next", disabled=page >= pages))
    return view


def _bot(interaction: discord.Interaction) -> ImagineBot:
    from bot.interactions.app import ImagineBot  # imported here: the app module imports this one

    return ImagineBot.of(interaction)
