"""Blocked words and simple patterns a guild forbids in prompts (pure, no I/O).

A term is a word or phrase, matched case-insensitively as whole words: `cat` blocks "Cat" and
"a cat." but not "catalog". `*` stands for any letters, so `cat*` also blocks "catalog" and
`*cat` blocks "wildcat". Spaces inside a phrase match any run of whitespace. Terms are never
regular expressions: people who moderate a server should not need to know regex, and a pattern
from a chat command must not be able to hang the bot.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

MAX_TERM_CHARS: Final = 100
# Each `*` adds a loop to the match; two keep the worst case quadratic in one word's length.
MAX_WILDCARDS: Final = 2
_WILDCARD: Final = "*"


class TermProblem(enum.StrEnum):
    NO_LETTER_OR_DIGIT = "no_letter_or_digit"
    TOO_MANY_WILDCARDS = "too_many_wildcards"  # more than MAX_WILDCARDS
    TOO_LONG = "too_long"  # more than MAX_TERM_CHARS


class InvalidTermError(ValueError):
    def __init__(self, problem: TermProblem) -> None:
        self.problem = problem
        super().__init__(f"invalid blocked term: {problem}")


def _fold(text: str) -> str:
    # NFKC turns look-alikes such as fullwidth letters into plain ones before casefolding.
    return unicodedata.normalize("NFKC", text).casefold()


def normalize_term(text: str) -> str:
    """The stored form of a term: folded case, single spaces, no runs of `*`."""
    term = " ".join(_fold(text).split())
    term = re.sub(r"\*{2,}", _WILDCARD, term)
    if not term.replace(_WILDCARD, "").strip():
        raise InvalidTermError(TermProblem.NO_LETTER_OR_DIGIT)
    if term.count(_WILDCARD) > MAX_WILDCARDS:
        raise InvalidTermError(TermProblem.TOO_MANY_WILDCARDS)
    if len(term) > MAX_TERM_CHARS:
        raise InvalidTermError(TermProblem.TOO_LONG)
    return term


def _compile(term: str) -> re.Pattern[str]:
    words = []
    for word in term.split(" "):
        words.append(r"\w*".join(re.escape(piece) for piece in word.split(_WILDCARD)))
    body = r"\s+".join(words)
    return re.compile(rf"(?<!\w){body}(?!\w)")


class BlockedTerms:
    """A compiled set of terms; `find` returns the first term a prompt contains."""

    def __init__(self, terms: Iterable[str]) -> None:
        self._patterns = [(term, _compile(normalize_term(term))) for term in terms]

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def find(self, prompt: str) -> str | None:
        folded = _fold(prompt)
        for term, pattern in self._patterns:
            if pattern.search(folded):
                return term
        return None
