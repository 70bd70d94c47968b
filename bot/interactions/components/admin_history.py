"""`/imagine-admin history` pages and their Previous / Next buttons (restart-safe: the page and
the member filter live in the button's custom id)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.interactions.checks import is_moderator
from bot.interactions.components.page_buttons import PageButton
from bot.interactions.transport.embeds import to_embed
from bot.limits.admin import GuildAdmin
from bot.wording import admin_presentation as show

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot


async def history_page(
    guild_admin: GuildAdmin, guild_id: int, user_id: int | None, page: int
) -> tuple[discord.Embed, discord.ui.View | None]:
    """The embed for one page (past the last page: the last one) and its buttons."""
    found = await guild_admin.history(guild_id, user_id=user_id, page=page)
    pages = show.page_count(found)
    if page > pages and found.total:
        found = await guild_admin.history(guild_id, user_id=user_id, page=pages)
        page = pages
    return to_embed(show.history_card(found, user_id)), history_view(user_id, page, pages)


class HistoryPageButton(PageButton, prefix="imagine-admin:history"):
    """Previous / Next on a moderator's history page (user 0: every member)."""

    refusal = show.NOT_ALLOWED_HERE

    def allowed(self, interaction: discord.Interaction) -> bool:
        return is_moderator(interaction)

    async def page(
        self, bot: ImagineBot, interaction: discord.Interaction
    ) -> tuple[discord.Embed, discord.ui.View | None]:
        return await history_page(
            bot.services.guild_admin, interaction.guild_id or 0, self.user_id or None,
            self.page_number,
        )


def history_view(user_id: int | None, page: int, pages: int) -> discord.ui.View | None:
    return HistoryPageButton.page_view(user_id or 0, page, pages)
