"""`python -m bench.blocked_terms`: the worst case of blocked-word matching, before and after.

    python -m bench.blocked_terms [--repeat 20] [--skip-backtracking] [--json FILE]

A server's allowed maximum of the terms that made the old matcher slow (the longest allowed,
both wildcards, all alike: `tests.unit.limits.test_blocked_terms.worst_case_terms`) against the
hostile prompts of the longest allowed length. For each prompt: the one-scan RE2 matcher
(`bot.limits.blocked_terms`) on its first prompt (its automaton is built lazily) and then per
prompt, and the backtracking matcher it replaced (one Python regex per term: the unit tests'
`reference_patterns`; seconds per prompt, `--skip-backtracking` leaves it out). Prints a table
and writes JSON (`bench/results/blocked_terms_bench.json` by default).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Final

from bot.limits.blocked_terms import BlockedTerms
from bot.text_folding import fold
from tests.unit.limits.test_blocked_terms import (
    HOSTILE_PROMPTS,
    reference_patterns,
    worst_case_terms,
)

DEFAULT_JSON: Final = Path(__file__).resolve().parent / "results" / "blocked_terms_bench.json"


def backtracking_find(patterns: list[tuple[str, re.Pattern[str]]], prompt: str) -> bool:
    """The matcher before: each term's own regex, one after another."""
    folded = fold(prompt)
    return any(pattern.search(folded) for _, pattern in patterns)


def measure(repeat: int, backtracking: bool) -> dict[str, dict[str, float]]:
    terms = worst_case_terms()
    old = reference_patterns(terms) if backtracking else []
    results: dict[str, dict[str, float]] = {}
    for name, prompt in HOSTILE_PROMPTS.items():
        matcher = BlockedTerms(terms)
        started = time.perf_counter()
        assert matcher.find(prompt) is None
        first = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(repeat):
            matcher.find(prompt)
        row = {"re2_first_s": first, "re2_per_prompt_s": (time.perf_counter() - started) / repeat}
        if backtracking:
            started = time.perf_counter()
            assert not backtracking_find(old, prompt)
            row["backtracking_per_prompt_s"] = time.perf_counter() - started
        results[name] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-backtracking", action="store_true")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    results = measure(args.repeat, not args.skip_backtracking)
    print(f"{'prompt':<22}{'RE2 first':>12}{'RE2 each':>12}{'backtracking':>14}")
    for name, row in results.items():
        old = row.get("backtracking_per_prompt_s")
        first, each = row["re2_first_s"] * 1000, row["re2_per_prompt_s"] * 1000
        shown_old = f"{old:>13.2f}s" if old is not None else f"{'-':>14}"
        print(f"{name:<22}{first:>10.2f}ms{each:>10.3f}ms{shown_old}")
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
