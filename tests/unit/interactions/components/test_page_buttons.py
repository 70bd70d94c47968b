"""Page buttons: the prefix a subclass names gives both its custom ids and the template that
parses them back, so a click after a restart finds the same member and page."""

from __future__ import annotations

import discord
import pytest

from bot.interactions.components.admin_history import HistoryPageButton
from bot.interactions.components.history_pages import MemberHistoryButton
from bot.interactions.components.page_buttons import PageButton


@pytest.mark.parametrize(
    ("button", "prefix"),
    [(HistoryPageButton, "imagine-admin:history"), (MemberHistoryButton, "imagine-history")],
)
async def test_a_custom_id_parses_back_into_the_same_button(
    button: type[PageButton], prefix: str
) -> None:
    sent = button(42, 3, "next")
    custom_id = sent.item.custom_id
    assert custom_id == f"{prefix}:42:3:next"
    match = button.__discord_ui_compiled_template__.fullmatch(custom_id or "")
    assert match is not None
    parsed = await button.from_custom_id(None, sent.item, match)  # type: ignore[arg-type]
    assert (parsed.user_id, parsed.page_number, parsed.way) == (42, 3, "next")


def test_one_prefix_does_not_match_the_other() -> None:
    admin_id = HistoryPageButton(1, 2, "prev").item.custom_id or ""
    member_id = MemberHistoryButton(1, 2, "prev").item.custom_id or ""
    assert not MemberHistoryButton.__discord_ui_compiled_template__.fullmatch(admin_id)
    assert not HistoryPageButton.__discord_ui_compiled_template__.fullmatch(member_id)


def test_previous_and_next_are_disabled_at_the_ends() -> None:
    view = MemberHistoryButton.page_view(7, 1, 3)
    assert view is not None
    buttons = [item.item for item in view.children if isinstance(item, PageButton)]
    assert [(b.label, b.disabled) for b in buttons] == [("Previous", True), ("Next", False)]
    assert all(b.style is discord.ButtonStyle.secondary for b in buttons)
    assert MemberHistoryButton.page_view(7, 1, 1) is None
