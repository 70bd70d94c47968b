"""Blocked terms: whole words, case-insensitive, `*` wildcards, never regex; one linear scan
that agrees with the naive per-term matcher, whatever the terms."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.imaging import MAX_PROMPT_CHARS
from bot.limits.admin import MAX_BLOCKED_TERMS
from bot.limits.blocked_terms import (
    MAX_TERM_CHARS,
    BlockedTerms,
    InvalidTermError,
    normalize_term,
    visible_terms,
)
from bot.text_folding import fold


@pytest.mark.parametrize(
    ("term", "prompt", "blocked"),
    [
        ("cat", "A CAT on a mat.", True),
        ("cat", "a catalog of things", False),
        ("cat", "concatenate", False),
        ("cat*", "a catalog of things", True),
        ("*cat", "the wildcat sleeps", True),
        ("n*de", "a nude figure", True),
        ("red car", "a red\n  car", True),
        ("red car", "a red carpet", False),
        ("gore", "ＧＯＲＥ in fullwidth", True),  # look-alike letters fold to plain ones
        ("a.b", "axb", False),  # punctuation is literal, not a regex
        ("c++", "I like c++ code", True),
    ],
)
def test_matching(term: str, prompt: str, blocked: bool) -> None:
    assert (BlockedTerms([term]).find(prompt) is not None) is blocked


def test_find_names_the_matched_term() -> None:
    terms = BlockedTerms(["dog", "cat"])
    assert terms.find("a cat and a dog") in {"cat", "dog"}
    assert terms.find("a bird") is None
    assert not BlockedTerms([])


def test_normalize_folds_case_and_spaces() -> None:
    assert normalize_term("  Red   CAR ") == "red car"
    assert normalize_term("Cat***") == "cat*"


@pytest.mark.parametrize("bad", ["", "   ", "***", "a*b*c*d", "x" * 101])
def test_invalid_terms_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTermError):
        normalize_term(bad)


@pytest.mark.timeout(5)
def test_hostile_prompt_does_not_hang() -> None:
    terms = BlockedTerms(["a*b*c", "*x*"])
    assert terms.find("ab" * 1000) is None
    assert terms.find("a" * 2000) is None


@pytest.mark.parametrize(
    "hidden",
    ["\u200b", "\u200c", "\u200d", "\u00ad", "\u2060", "\ufeff", "\ufe0f", "\u180e"],
)
def test_an_invisible_character_inside_a_word_does_not_slip_past(hidden: str) -> None:
    terms = BlockedTerms(["gore", "red car", "n*de"])
    assert terms.find(f"so much g{hidden}o{hidden}re") == "gore"
    assert terms.find(f"a red{hidden} {hidden}car") == "red car"
    assert terms.find(f"a nu{hidden}de figure") == "n*de"
    assert BlockedTerms([f"go{hidden}re"]).find("GORE") == f"go{hidden}re"  # terms fold too


def test_a_term_that_folds_to_nothing_is_left_out() -> None:
    assert visible_terms(["cat", "\u200b", "dog"]) == ("cat", "dog")
    with pytest.raises(InvalidTermError):
        visible_terms(["a*b*c*d"])


# --- against a naive reference ---------------------------------------------------------------


def reference_patterns(terms: list[str]) -> list[tuple[str, re.Pattern[str]]]:
    """The matcher before (bench/blocked_terms.py times it): one backtracking regex per term,
    the meaning the one-scan matcher keeps (whole words, `*` = any letters, a space = any
    whitespace)."""
    compiled = []
    for term in terms:
        words = (
            r"\w*".join(re.escape(piece) for piece in word.split("*"))
            for word in normalize_term(term).split(" ")
        )
        body = r"\s+".join(words)
        compiled.append((term, re.compile(rf"(?<!\w){body}(?!\w)")))
    return compiled


def reference_find(terms: list[str], prompt: str) -> set[str]:
    """Every term the folded prompt contains, by the per-term regexes."""
    folded = fold(prompt)
    return {term for term, pattern in reference_patterns(terms) if pattern.search(folded)}


# Few letters, so random terms and prompts meet; word and non-word characters, look-alikes,
# invisible characters and whitespace of several kinds.
LETTERS = "abAé_1.+-' \n\u00a0\u200bＢ"
prompts = st.text(alphabet=LETTERS, max_size=40)
terms = st.lists(
    st.text(alphabet=LETTERS + "**", min_size=1, max_size=8).filter(lambda t: _valid(t)),
    min_size=1,
    max_size=6,
)


def _valid(term: str) -> bool:
    try:
        normalize_term(term)
    except InvalidTermError:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(terms, prompts)
def test_one_scan_finds_what_the_naive_matcher_finds(term_list: list[str], prompt: str) -> None:
    expected = reference_find(term_list, prompt)
    found = BlockedTerms(term_list).find(prompt)
    if expected:
        assert found in expected
    else:
        assert found is None


@settings(max_examples=200, deadline=None)
@given(terms, st.data())
def test_a_prompt_made_of_a_term_is_found(term_list: list[str], data: st.DataObject) -> None:
    """Random prompts rarely contain a term: build some that do (each `*` some letters)."""
    term = data.draw(st.sampled_from(term_list))
    filler = data.draw(st.text(alphabet="abé_1", max_size=3))
    before = data.draw(st.sampled_from(["", "x ", ". ", "a+"]))
    prompt = before + term.replace("*", filler) + data.draw(st.sampled_from(["", " y", "."]))
    expected = reference_find(term_list, prompt)
    assume(expected)
    assert BlockedTerms(term_list).find(prompt) in expected


# --- the worst case ----------------------------------------------------------------------------


def worst_case_terms() -> list[str]:
    """What made the backtracking matcher slow: the most terms a server may have, each the
    longest allowed with both wildcards, all alike, none matching the hostile prompts."""
    third = (MAX_TERM_CHARS - 8) // 3
    return [f"{'a' * third}*{'a' * third}*{'a' * third}{n}" for n in range(MAX_BLOCKED_TERMS)]


HOSTILE_PROMPTS = {
    "one long word": "a" * MAX_PROMPT_CHARS,
    "many long words": ("a" * 199 + " ") * (MAX_PROMPT_CHARS // 200),
    "wildcard lookalikes": "a*" * (MAX_PROMPT_CHARS // 2),
}


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS.values(), ids=HOSTILE_PROMPTS.keys())
def test_the_worst_case_is_one_scan_of_the_prompt(prompt: str) -> None:
    """The work is counted, not timed: one search of the encoded prompt, whose length is bounded
    by the prompt cap; RE2 guarantees that search is linear in it (tests/bench times it)."""
    terms = BlockedTerms(worst_case_terms())
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert terms.find(prompt) is None
    assert terms.work.scans == 1
    assert terms.work.scanned_bytes <= 2 * (MAX_PROMPT_CHARS + 2)
    assert terms.work.span_checks == 0


def test_naming_the_matched_term_looks_only_at_the_matched_span() -> None:
    many = worst_case_terms()
    terms = BlockedTerms([*many, "dragon"])
    assert terms.find(f"{'a ' * 900}a dragon") == "dragon"
    assert terms.work.scans == 1
    assert terms.work.span_checks == len(many) + 1  # each term once, over the span only
    assert terms.work.span_bytes == (len(many) + 1) * len("\x00 dragon\x00")  # marked edges
