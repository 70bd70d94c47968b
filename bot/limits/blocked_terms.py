"""Blocked words and simple patterns a guild forbids in prompts, matched in one linear pass.

A term is a word or phrase, matched case-insensitively as whole words: `cat` blocks "Cat" and
"a cat." but not "catalog". `*` stands for any letters, so `cat*` also blocks "catalog" and
`*cat` blocks "wildcat". Spaces inside a phrase match any run of whitespace. Prompts and terms
are folded the same way first (`bot.text_folding.fold`: NFKC, case folding, invisible
characters removed, whitespace runs collapsed), so "c\u200bat" or "ＣＡＴ" is "cat". Terms are
never regular expressions: people who moderate a server should not need to know regex, and a
pattern from a chat command must not be able to hang the bot.

All of a set's terms are compiled into one alternation for RE2, whose automaton runs in time
linear in the text whatever the pattern (no backtracking), so a prompt is scanned once however
many terms there are. RE2 has no look-around, so word edges are made visible in the text
itself: every non-word character is written after a NUL mark (`fold` removes NULs), and a term
must start after a marked character and end before one. The text is padded with a space at
each end so no anchors are needed.

The work per prompt is bounded (`MatchWork` counts it): one scan of the encoded prompt (at most
twice the folded prompt's characters plus four) and, only when a term matched, one anchored
match per term over the matched span to name the term.
"""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import re2

from bot.text_folding import fold

MAX_TERM_CHARS: Final = 100
# Kept from the backtracking matcher: more wildcards make terms no slower now, but terms stay
# simple for the moderators who read them.
MAX_WILDCARDS: Final = 2
_WILDCARD: Final = "*"
_MARK: Final = "\x00"  # before every non-word character of an encoded text
_WORD_CHARACTER: Final = "[^\\x00]"  # at a character's start: one word character, whole
_EDGE_BEFORE: Final = "\\x00[^\\x00]"  # a marked (non-word) character
_EDGE_AFTER: Final = "\\x00"  # the next character is a marked one
# The DFA of 500 worst-case terms needs room for its states: RE2 allocates this lazily, and past
# it falls back to its (slower, still linear) NFA rather than failing.
_RE2_MAX_MEMORY: Final = 64 << 20


class TermProblem(enum.StrEnum):
    NO_LETTER_OR_DIGIT = "no_letter_or_digit"
    TOO_MANY_WILDCARDS = "too_many_wildcards"  # more than MAX_WILDCARDS
    TOO_LONG = "too_long"  # more than MAX_TERM_CHARS


class InvalidTermError(ValueError):
    def __init__(self, problem: TermProblem) -> None:
        self.problem = problem
        super().__init__(f"invalid blocked term: {problem}")


def normalize_term(text: str) -> str:
    """The stored form of a term: folded like a prompt, single spaces, no runs of `*`."""
    term = re.sub(r"\*{2,}", _WILDCARD, fold(text))
    if not term.replace(_WILDCARD, "").strip():
        raise InvalidTermError(TermProblem.NO_LETTER_OR_DIGIT)
    if term.count(_WILDCARD) > MAX_WILDCARDS:
        raise InvalidTermError(TermProblem.TOO_MANY_WILDCARDS)
    if len(term) > MAX_TERM_CHARS:
        raise InvalidTermError(TermProblem.TOO_LONG)
    return term


def visible_terms(terms: Iterable[str]) -> tuple[str, ...]:
    """The terms that still have something to match once folded.

    A term stored before folding removed invisible characters may have been nothing else (a
    lone zero-width space): it can match nothing, so it is left out rather than refused.
    """
    kept = []
    for term in terms:
        try:
            normalize_term(term)
        except InvalidTermError as exc:
            if exc.problem is not TermProblem.NO_LETTER_OR_DIGIT:
                raise
            continue
        kept.append(term)
    return tuple(kept)


# Python's `\W` (not a letter, digit or `_`, as str.isalnum says) is the meaning terms kept from
# the regex matcher; this substitution has nothing to backtrack over.
_NON_WORD: Final = re.compile(r"\W")


def _mark(text: str) -> str:
    """Word edges made visible: each non-word character after a NUL mark."""
    return _NON_WORD.sub(_MARK + r"\g<0>", text)


def encode(folded: str) -> bytes:
    """A folded prompt as the patterns read it: marked, padded with a space at each end."""
    return _mark(f" {folded} ").encode()


def _body(term: str) -> str:
    """The RE2 pattern of a normalized term, between its edges."""
    words = []
    for word in term.split(" "):
        pieces = (re2.escape(_mark(piece)) for piece in word.split(_WILDCARD))
        words.append(f"{_WORD_CHARACTER}*".join(pieces))
    return str(re2.escape(_mark(" "))).join(words)


def _compile(body: str) -> re2._Regexp:
    options = re2.Options()
    options.never_capture = True
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEMORY
    return re2.compile(f"{_EDGE_BEFORE}(?:{body}){_EDGE_AFTER}", options)


@dataclass
class MatchWork:
    """What matching has cost so far: engine calls and the bytes they were given."""

    scans: int = 0  # unanchored searches of a whole prompt
    scanned_bytes: int = 0
    span_checks: int = 0  # anchored matches over a matched span, to name the term
    span_bytes: int = 0


class BlockedTerms:
    """A set of terms; `find` returns a term the prompt contains, in one scan.

    Terms are checked when the set is made and compiled on the first `find` (in a worker
    thread: admission screens prompts there), once for the life of the set, which lives as long
    as its guild's rules version.
    """

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms = tuple(terms)
        self._bodies = [_body(normalize_term(term)) for term in self.terms]
        self._lock = threading.Lock()
        self._compiled: tuple[re2._Regexp, list[re2._Regexp]] | None = None
        self.work = MatchWork()

    def __bool__(self) -> bool:
        return bool(self.terms)

    def _patterns(self) -> tuple[re2._Regexp, list[re2._Regexp]]:
        with self._lock:
            if self._compiled is None:
                combined = _compile("|".join(f"(?:{body})" for body in self._bodies))
                self._compiled = (combined, [_compile(body) for body in self._bodies])
            return self._compiled

    def find(self, prompt: str) -> str | None:
        if not self.terms:
            return None
        combined, each = self._patterns()
        text = encode(fold(prompt))
        self.work.scans += 1
        self.work.scanned_bytes += len(text)
        found = combined.search(text)
        if found is None:
            return None
        start, end = found.span()
        for term, pattern in zip(self.terms, each, strict=True):
            self.work.span_checks += 1
            self.work.span_bytes += end - start
            if pattern.fullmatch(text, start, end) is not None:
                return term
        raise AssertionError("the alternation matched but none of its terms did")
