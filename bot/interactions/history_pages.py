"""`/imagine-history` pages and their Previous / Next buttons.

Restart-safe: the member and the page live in the button's custom id. Only that member may turn
the pages (the reply is ephemeral, so normally only they see it; the check makes it certain).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.interactions import history_presentation as show
from bot.interactions.presentation import NO_MENTIONS
from bot.interactions.replies import reply_ephemeral
from bot.limits.member_history import MemberHistory, page_count

if TYPE_CHECKING:
    from bot.interactions.app import ImagineBot


async def member_history_page(
    history: MemberHistory, user_id: int, guild_id: int | None, page: int
) -> tuple[discord.Embed, discord.ui.View | None]:
    """The member's page (past the last page: the last one) and its buttons."""
    found = await history.page(user_id, guild_id, page)
    number = found.offset // found.limit + 1
    embed = show.history_embed(found, in_dms=guild_id is None)
    return embed, history_view(user_id, number, page_count(found))


class MemberHistoryButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine-history:(?P<user>\d+):(?P<page>\d+):(?P<way>prev|next)",
):
    """Previous / Next on a member's history page."""

    def __init__(self, user_id: int, page: int, way: str, *, disabled: bool = False) -> None:
        self.user_id, self.page, self.way = user_id, page, way
        super().__init__(
            discord.ui.Button(
                label="Previous" if way == "prev" else "Next",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine-history:{user_id}:{page}:{way}",
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
        if interaction.user.id != self.user_id:
            await reply_ephemeral(interaction, show.NOT_YOUR_HISTORY)
            return
        embed, view = await member_history_page(
            _bot(interaction).services.member_history,
            self.user_id,
            interaction.guild_id,
            self.page,
        )
        await interaction.response.edit_message(
            embed=embed, view=view, allowed_mentions=NO_MENTIONS
        )


def history_view(user_id: int, page: int, pages: int) -> discord.ui.View | None:
    if pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(MemberHistoryButton(user_id, page - 1, "prev", disabled=page <= 1))
    view.add_item(MemberHistoryButton(user_id, page + 1, "next", disabled=page >= pages))
    return view


def _bot(interaction: discord.Interaction) -> ImagineBot:
    from bot.interactions.app import ImagineBot  # imported here: the app module imports this one

    return ImagineBot.of(interaction)
