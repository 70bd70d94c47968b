"""`bot/wording/` builds what people read as plain text and cards: it never imports discord
(the edge turns cards into embeds), so the CLI and a future catalogue can use it as it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORDING = Path(__file__).resolve().parents[3] / "bot" / "wording"


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


FORBIDDEN = ("discord", "bot.interactions", "bot.app", "bot.terminal")


@pytest.mark.parametrize("path", sorted(WORDING.glob("*.py")), ids=lambda p: p.name)
def test_wording_imports_neither_discord_nor_the_edge(path: Path) -> None:
    bad = {
        module
        for module in imported(path)
        if any(module == name or module.startswith(name + ".") for name in FORBIDDEN)
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_check_sees_the_wording() -> None:
    assert {"presentation.py", "admin_presentation.py", "history_presentation.py"} <= {
        p.name for p in WORDING.glob("*.py")
    }
