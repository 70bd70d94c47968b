"""`/imagine-history` pages and their Previous / Next buttons.

Restart-safe: the member and the page live in the button's custom id. Only that member may turn
the pages (the reply is ephemeral, so normally only they see it; the check makes it certain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.interactions.components.page_buttons import PageButton
from bot.interactions.transport.embeds import to_embed
from bot.storage.repositories.member_history import MemberHistory, page_count
from bot.wording import history_presentation as show

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot


async def member_history_page(
    history: MemberHistory, user_id: int, guild_id: int | None, page: int
) -> tuple[discord.Embed, discord.ui.View | None]:
    """The member's page (past the last page: the last one) and its buttons."""
    found = await history.page(user_id, guild_id, page)
    number = found.offset // found.limit + 1
    embed = to_embed(show.history_card(found, in_dms=guild_id is None))
    return embed, history_view(user_id, number, page_count(found))


class MemberHistoryButton(PageButton, prefix="imagine-history"):
    """Previous / Next on a member's own history page."""

    refusal = show.NOT_YOUR_HISTORY

    def allowed(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.user_id

    async def page(
        self, bot: ImagineBot, interaction: discord.Interaction
    ) -> tuple[discord.Embed, discord.ui.View | None]:
        return await member_history_page(
            bot.services.member_history, self.user_id, interaction.guild_id, self.page_number
        )


def history_view(user_id: int, page: int, pages: int) -> discord.ui.View | None:
    return MemberHistoryButton.page_view(user_id, page, pages)
