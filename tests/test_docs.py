"""docs/architecture.md lists every module by room with its docstring's first sentence.

The tables between the `modules:start` and `modules:end` markers are generated from the code,
so they cannot drift: after adding, moving or re-describing a module run
`.venv/bin/python -m tests.test_docs --write` and commit the result.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
START, END = "<!-- modules:start -->", "<!-- modules:end -->"

# What each room is for, in the README's words; the order is the order of the tables.
ROOMS: dict[str, str] = {
    "bot": "settings, logging, clocks and the small leaves every room may use",
    "bot/jobs": "the job's life, in the Discord-free core",
    "bot/jobs/polling": "when to poll, learned from how long jobs take",
    "bot/limits": "who may generate: pure policy, admission, moderators' changes",
    "bot/novita": "the only code that talks to Novita and the image host",
    "bot/storage": "one database handle, the schema, numbered migrations",
    "bot/storage/repositories": "one repository per table or concern",
    "bot/storage/reliability": "what keeps writes landing",
    "bot/observability": "metrics, health, loop lag",
    "bot/reports": "pictures for moderators",
    "bot/wording": "every sentence a member or moderator reads (no discord)",
    "bot/interactions": "the Discord edge: from an interaction to a call into the core",
    "bot/interactions/components": "what a member clicks: buttons and pages",
    "bot/interactions/transport": "getting things onto Discord",
    "bot/app": "the bot process: the bot class and the composition root",
    "bot/terminal": "terminal front ends",
    "cogs": "thin adapters, one per command",
    "fakes": "the fakes, installed with the project, never imported by bot/",
    "fakes/discord": "a strict fake Discord that the real discord.py logs into",
    "fakes/novita": "a spec-faithful mock Novita",
}
SKIPPED = ("bot/storage/migrations",)  # frozen, one per version: listed as a folder


def first_sentence(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    text = " ".join(doc.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).replace("|", "\\|")


def modules_of(room: str) -> list[Path]:
    folder = ROOT / room
    return sorted(p for p in folder.glob("*.py")
                  if p.name != "__init__.py" or first_sentence(p))


def module_tables() -> str:
    parts: list[str] = []
    for room, purpose in ROOMS.items():
        parts.append(f"### `{room}/`: {purpose}\n\n| module | its one job |\n|---|---|")
        for path in modules_of(room):
            rel = path.relative_to(ROOT).as_posix()
            parts.append(f"| `{rel}` | {first_sentence(path)} |")
        parts.append("")
    migrations = sorted(p.stem for p in (ROOT / "bot/storage/migrations").glob("v*_*.py"))
    parts.append(f"Numbered migrations live in `bot/storage/migrations/` ({', '.join(migrations)}),"
                 " each frozen at its version and found by name.\n")
    return "\n".join(parts)


def documented() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(START) + len(START): text.index(END)].strip("\n") + "\n"


def test_every_module_is_documented_with_its_own_words() -> None:
    assert documented() == module_tables(), (
        "docs/architecture.md is out of date: run `python -m tests.test_docs --write`")


def test_every_folder_of_the_tree_is_a_room() -> None:
    folders = {p.parent.relative_to(ROOT).as_posix()
               for top in ("bot", "cogs", "fakes") for p in (ROOT / top).rglob("*.py")}
    missing = sorted(f for f in folders - set(ROOMS) if not f.startswith(SKIPPED))
    assert not missing, f"add these folders to ROOMS: {missing}"


def test_every_module_says_its_one_job() -> None:
    silent = [p.relative_to(ROOT).as_posix() for room in ROOMS for p in modules_of(room)
              if not first_sentence(p)]
    assert not silent, f"modules without a docstring: {silent}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        text = DOC.read_text(encoding="utf-8")
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{START}\n{module_tables()}{END}{tail}", encoding="utf-8")
    else:
        print(module_tables())
