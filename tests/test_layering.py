"""The layering stays checkable from the repository (see README, Architecture).

- The Discord-free core (`bot/` outside `bot/interactions/` and the terminal front ends) never
  imports `discord` or the Discord edge.
- The product package `bot/` never imports `cogs/` (loaded by name as extensions) or the fakes
  (the CLI finds its offline tools by name).
- No module of the product, the cogs, the fakes or the benchmarks passes 600 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
# Front ends that talk to people (Discord, the terminal) rather than being the core.
EDGE = ("bot/interactions/", "bot/app/", "bot/terminal/", "bot/wording/", "bot/__main__.py")


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


CORE = [p for p in python_files("bot") if not relative(p).startswith(EDGE)]


@pytest.mark.parametrize("path", CORE, ids=relative)
def test_the_core_never_imports_discord_or_the_edge(path: Path) -> None:
    bad = {
        m
        for m in imported_modules(path)
        if is_under(m, "discord") or is_under(m, "bot.interactions")
    }
    assert not bad, f"{relative(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", python_files("bot"), ids=relative)
def test_the_product_never_imports_cogs_or_fakes(path: Path) -> None:
    bad = {m for m in imported_modules(path) if is_under(m, "cogs") or is_under(m, "fakes")}
    assert not bad, f"{relative(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", python_files("bot", "cogs", "fakes", "bench"), ids=relative)
def test_no_module_passes_600_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{relative(path)} has {lines} lines; split it by concern"


def test_the_checks_see_the_whole_tree() -> None:
    assert len(CORE) > 30 and any(relative(p).startswith("bot/interactions/") for p in
                                  python_files("bot"))
