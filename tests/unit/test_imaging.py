from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.imaging import (
    DEFAULT_SIZE,
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MIN_SIDE,
    SIZE_PRESETS,
    ImageSize,
    InvalidPromptError,
    InvalidSizeError,
    PromptProblem,
    SizeProblem,
    parse_size,
    resolve_size,
    validate_prompt,
)
from bot.wording.messages import describe_error

sides = st.integers(min_value=MIN_SIDE, max_value=MAX_SIDE)
separators = st.sampled_from(["*", "x", "X", "×", " x ", " X ", " * "])


@given(sides, sides, separators)
def test_every_valid_size_parses_and_is_sent_with_an_asterisk(w: int, h: int, sep: str) -> None:
    size = parse_size(f"{w}{sep}{h}")
    assert (size.width, size.height) == (w, h)
    assert size.wire == f"{w}*{h}"
    assert parse_size(size.wire) == size


@given(st.integers(min_value=0, max_value=99999), sides, st.booleans())
def test_out_of_range_sides_are_refused(bad: int, good: int, bad_first: bool) -> None:
    if MIN_SIDE <= bad <= MAX_SIDE:
        return
    text = f"{bad}*{good}" if bad_first else f"{good}*{bad}"
    with pytest.raises(InvalidSizeError) as info:
        parse_size(text)
    assert info.value.problem is SizeProblem.SIDE_OUT_OF_RANGE
    worded = describe_error(info.value) or ""
    assert "256" in worded and "1536" in worded


@given(st.text(max_size=20))
def test_parser_never_crashes(text: str) -> None:
    try:
        size = parse_size(text)
    except InvalidSizeError:
        return
    assert MIN_SIDE <= size.width <= MAX_SIDE and MIN_SIDE <= size.height <= MAX_SIDE


@pytest.mark.parametrize("text", ["1024", "big", "1024*", "*1024", "10.5*1024", "-512*512"])
def test_malformed_sizes_explain_the_format(text: str) -> None:
    with pytest.raises(InvalidSizeError) as info:
        parse_size(text)
    assert info.value.problem is SizeProblem.NOT_WIDTH_BY_HEIGHT
    assert "width*height" in (describe_error(info.value) or "")


def test_empty_size_means_default() -> None:
    assert parse_size(None) == DEFAULT_SIZE == parse_size("  ")


def test_presets_are_valid_and_resolvable() -> None:
    for preset in SIZE_PRESETS:
        assert resolve_size(preset.key) == preset.size
        assert resolve_size(preset.key.upper()) == preset.size
    assert resolve_size("768x1024") == ImageSize(768, 1024)


def test_prompt_validation() -> None:
    assert validate_prompt("  hello  ") == "hello"
    for blank in (" \n\t ", None):
        with pytest.raises(InvalidPromptError) as info:
            validate_prompt(blank)
        assert info.value.problem is PromptProblem.EMPTY
        assert "empty" in (describe_error(info.value) or "")
    assert len(validate_prompt("a" * MAX_PROMPT_CHARS)) == MAX_PROMPT_CHARS
    with pytest.raises(InvalidPromptError) as info:
        validate_prompt("a" * (MAX_PROMPT_CHARS + 1))
    assert info.value.problem is PromptProblem.TOO_LONG
    assert f"{MAX_PROMPT_CHARS:,}".replace(",", "") in (describe_error(info.value) or "")


@pytest.mark.parametrize(
    "invisible", ["\u200b", "\u200b\u200d\u2060", "\u00ad \ufeff", "\ufe0f\u200c", "\u2063\n\u180e"]
)
def test_a_prompt_of_invisible_characters_is_refused(invisible: str) -> None:
    with pytest.raises(InvalidPromptError) as info:
        validate_prompt(invisible)
    assert info.value.problem is PromptProblem.NOTHING_VISIBLE
    assert "no visible characters" in (describe_error(info.value) or "")
    assert validate_prompt("\u200bcat\u200b") == "\u200bcat\u200b"  # sent as typed
