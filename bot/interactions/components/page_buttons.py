"""Previous / Next buttons for paged ephemeral replies, restart-safe: the page and whose pages
they are live in the custom id (`<prefix>:<user>:<page>:<prev|next>`), parsed back on a click."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Self

import discord

from bot.interactions.transport.embeds import NO_MENTIONS

if TYPE_CHECKING:
    from bot.app.bot import ImagineBot


class PageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """One page-turning button. Subclasses name their `prefix` in the class statement
    (`class X(PageButton, prefix="imagine-history")`, which gives the template that parses the
    custom id back), set `refusal`, and define `page()`: the embed and buttons of a page;
    `allowed()` says who may turn it (else `refusal`)."""

    prefix: ClassVar[str]
    refusal: ClassVar[str]

    def __init_subclass__(cls, *, prefix: str, **kwargs: Any) -> None:
        cls.prefix = prefix
        super().__init_subclass__(
            template=rf"{prefix}:(?P<user>\d+):(?P<page>\d+):(?P<way>prev|next)", **kwargs
        )

    def __init__(self, user_id: int, page: int, way: str, *, disabled: bool = False) -> None:
        self.user_id, self.page_number, self.way = user_id, page, way
        super().__init__(
            discord.ui.Button(
                label="Previous" if way == "prev" else "Next",
                style=discord.ButtonStyle.secondary,
                custom_id=f"{self.prefix}:{user_id}:{page}:{way}",
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

    @classmethod
    def page_view(cls, user_id: int, page: int, pages: int) -> discord.ui.View | None:
        """Previous and Next for `page` of `pages` (none when everything fits on one)."""
        if pages <= 1:
            return None
        view = discord.ui.View(timeout=None)
        view.add_item(cls(user_id, page - 1, "prev", disabled=page <= 1))
        view.add_item(cls(user_id, page + 1, "next", disabled=page >= pages))
        return view

    def allowed(self, interaction: discord.Interaction) -> bool:
        raise NotImplementedError

    async def page(
        self, bot: ImagineBot, interaction: discord.Interaction
    ) -> tuple[discord.Embed, discord.ui.View | None]:
        raise NotImplementedError

    async def callback(self, interaction: discord.Interaction) -> None:
        from bot.app.bot import ImagineBot  # imported here: the app imports this one
        from bot.interactions.transport.replies import reply_ephemeral

        if not self.allowed(interaction):
            await reply_ephemeral(interaction, self.refusal)
            return
        embed, view = await self.page(ImagineBot.of(interaction), interaction)
        await interaction.response.edit_message(
            embed=embed, view=view, allowed_mentions=NO_MENTIONS
        )
