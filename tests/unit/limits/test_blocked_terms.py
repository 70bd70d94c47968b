"""Blocked terms: whole words, case-insensitive, `*` wildcards, never regex."""

from __future__ import annotations

import pytest

from bot.limits.blocked_terms import BlockedTerms, InvalidTermError, normalize_term


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
