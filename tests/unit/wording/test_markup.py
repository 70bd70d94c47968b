"""The wording's own markdown and mention escapes match discord.py's, character for character."""

from __future__ import annotations

import datetime as dt

import discord
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.wording.markup import escape_markdown, escape_mentions, relative_time

TRICKY = [
    "",
    "plain words",
    "**bold** __under__ ~~strike~~ ||spoiler|| `code` ```block```",
    "back\\slash \\* already escaped",
    "> quote\n>>> block quote\n# heading\n## two\n### three\n#### four\n - item\n-dash",
    "[masked](https://example.com/a_b) and <https://x.y/z_*> and https://e.com/a_b_c.",
    "steam://run/1_2 http://a_b notaurl://x_y",
    "@everyone @here <@123456789012345678> <@!123456789012345678> <@&123456789012345678>",
    "@1234567890123456 (16 digits) @123456789012345678901 (21 digits) <#123456789012345678>",
    "émoji 🎨 and ×, a\tb\r\nc",
]
MARKUP_CHARACTERS = st.text(
    alphabet=st.sampled_from(list("*_~|`\\>#-[]()<>:/@!& \nabhtps0123456789.everyonehr")),
    max_size=60,
)


@pytest.mark.parametrize("text", TRICKY)
def test_escapes_match_discord_py_on_tricky_text(text: str) -> None:
    assert escape_markdown(text) == discord.utils.escape_markdown(text)
    assert escape_mentions(text) == discord.utils.escape_mentions(text)


@given(MARKUP_CHARACTERS)
def test_escapes_match_discord_py_on_any_markup(text: str) -> None:
    assert escape_markdown(text) == discord.utils.escape_markdown(text)
    assert escape_mentions(text) == discord.utils.escape_mentions(text)


def test_relative_time_is_discord_relative_timestamp() -> None:
    moment = dt.datetime(2026, 11, 25, 12, 0, 30, 900_000, tzinfo=dt.UTC)
    assert relative_time(moment) == discord.utils.format_dt(moment, "R") == "<t:1795608030:R>"
