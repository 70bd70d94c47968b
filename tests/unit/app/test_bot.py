"""The bot finds its cogs by name: every module of `cogs/`, nothing else, never imported by it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.app.bot import cog_extensions

ROOT = Path(__file__).resolve().parents[3]


def test_every_cog_module_is_an_extension() -> None:
    modules = sorted(p.stem for p in (ROOT / "cogs").glob("*.py") if not p.stem.startswith("_"))
    assert cog_extensions() == tuple(f"cogs.{name}" for name in modules)
    assert {"cogs.imagine", "cogs.admin", "cogs.quota", "cogs.history", "cogs.edit"} <= set(
        cog_extensions())


def test_a_new_cog_module_is_found_without_a_list(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "more_cogs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "style.py").write_text("raise RuntimeError('found, never imported')\n")
    (package / "_helpers.py").write_text("")
    (package / "nested").mkdir()
    (package / "nested" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cog_extensions("more_cogs") == ("more_cogs.style",)
    assert "more_cogs.style" not in sys.modules


def test_a_missing_cogs_package_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="not installed"):
        cog_extensions("no_such_cogs_package")
