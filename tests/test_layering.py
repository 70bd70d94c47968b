"""The layering stays checkable from the repository (see README, Architecture).

- The Discord-free core (`bot/` outside the edge and the wording) never imports `discord`, the
  edge or the wording: it builds no sentences, only codes and figures.
- The wording (`bot/wording/`) builds every sentence as text and plain cards over core types: it
  never imports `discord` or the edge (the edge turns cards into embeds).
- The product package `bot/` never imports `cogs/` (loaded by name as extensions) or the fakes
  (the CLI finds its offline tools by name).
- Settings (`bot/config.py`) import no other module of `bot/`, and storage imports only the leaves
  below it (the job model, usage, clocks, image sizes, batching): nothing imports upwards.
- No module of the product, the cogs, the fakes or the benchmarks passes 600 lines, and no folder
  of `bot/` holds more than 12 modules (its `__init__.py` counted; frozen migrations aside).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
MAX_MODULES_PER_FOLDER = 12
# Front ends that talk to people (Discord, the terminal) rather than being the core.
EDGE = ("bot/interactions/", "bot/app/", "bot/terminal/", "bot/__main__.py")
WORDING = ("bot/wording/",)
EDGE_PACKAGES = ("bot.interactions", "bot.app", "bot.terminal")


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


def imports_any(path: Path, packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported_modules(path) if any(is_under(m, p) for p in packages))


CORE = [p for p in python_files("bot") if not relative(p).startswith(EDGE + WORDING)]
WORDING_MODULES = [p for p in python_files("bot") if relative(p).startswith(WORDING)]


@pytest.mark.parametrize("path", CORE, ids=relative)
def test_the_core_never_imports_discord_the_edge_or_the_wording(path: Path) -> None:
    bad = imports_any(path, ("discord", *EDGE_PACKAGES, "bot.wording"))
    assert not bad, f"{relative(path)} imports {bad}"


@pytest.mark.parametrize("path", WORDING_MODULES, ids=relative)
def test_the_wording_never_imports_discord_or_the_edge(path: Path) -> None:
    bad = imports_any(path, ("discord", *EDGE_PACKAGES))
    assert not bad, f"{relative(path)} imports {bad}"


# What storage may import from the rest of `bot/`: leaves, never the services above it.
STORAGE_MAY_IMPORT = ("bot.storage", "bot.jobs.model", "bot.usage", "bot.clock", "bot.imaging",
                      "bot.batching")


@pytest.mark.parametrize("path", python_files("bot/storage"), ids=relative)
def test_storage_imports_only_the_leaves_below_it(path: Path) -> None:
    bad = [m for m in imports_any(path, ("bot",))
           if m != "bot" and not any(is_under(m, p) for p in STORAGE_MAY_IMPORT)]
    assert not bad, f"{relative(path)} imports {bad}"


def test_settings_import_nothing_above_them() -> None:
    assert imports_any(ROOT / "bot/config.py", ("bot",)) == []


@pytest.mark.parametrize("path", python_files("bot"), ids=relative)
def test_the_product_never_imports_cogs_or_fakes(path: Path) -> None:
    bad = imports_any(path, ("cogs", "fakes"))
    assert not bad, f"{relative(path)} imports {bad}"


@pytest.mark.parametrize("path", python_files("bot", "cogs", "fakes", "bench"), ids=relative)
def test_no_module_passes_600_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{relative(path)} has {lines} lines; split it by concern"


FOLDERS = sorted({p.parent for p in python_files("bot")} - {ROOT / "bot/storage/migrations"})


@pytest.mark.parametrize("folder", FOLDERS, ids=relative)
def test_no_folder_holds_more_than_12_modules(folder: Path) -> None:
    modules = sorted(p.name for p in folder.glob("*.py"))
    assert len(modules) <= MAX_MODULES_PER_FOLDER, (
        f"{relative(folder)} holds {len(modules)} modules; give a concern its own folder")


def test_the_checks_see_the_whole_tree() -> None:
    assert len(CORE) > 30 and len(WORDING_MODULES) >= 6
    assert any(relative(p).startswith("bot/interactions/") for p in python_files("bot"))
    assert ROOT / "bot/jobs" in FOLDERS and ROOT / "bot/storage/repositories" in FOLDERS
