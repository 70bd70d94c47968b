"""Folding: what a reader cannot see goes, look-alikes and case fold, whitespace collapses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.text_folding import fold, has_visible_character, is_invisible

INVISIBLE = {
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "soft hyphen": "\u00ad",
    "word joiner": "\u2060",
    "invisible separator": "\u2063",
    "byte-order mark": "\ufeff",
    "variation selector 16": "\ufe0f",
    "variation selector 256": "\U000e01ef",
    "Mongolian vowel separator": "\u180e",
    "combining grapheme joiner": "\u034f",
    "Hangul filler": "\u3164",
    "tag letter": "\U000e0061",
    "left-to-right mark": "\u200e",
    "bell": "\x07",
    "NUL": "\x00",
}


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_characters_inside_a_word_are_removed(char: str) -> None:
    assert is_invisible(char)
    assert fold(f"G{char}o{char}RE") == "gore"
    assert not has_visible_character(f"{char} {char}")


def test_fold_applies_nfkc_and_case_folding_and_collapses_whitespace() -> None:
    assert fold("  ＣＡＴ\n\t and\u00a0Straße ") == "cat and strasse"
    assert fold("e\u200b\u0301") == "\u00e9"  # the accent joins its letter once the gap goes
    assert not is_invisible(" ") and not is_invisible("a")
    assert has_visible_character("\u200b.")


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


def test_no_plane_outside_the_table_holds_an_invisible_character() -> None:
    """The removal table covers planes 0, 1 and 14; every other code point is visible."""
    others = (range(0x20000, 0xE0000), range(0xF0000, 0x110000))
    assert not [hex(code) for block in others for code in block if is_invisible(chr(code))]
