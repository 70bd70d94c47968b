"""Migrations are found by module name (`v<N>_<name>.py`), ordered by VERSION, numbered 1..N."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.storage import migrations
from bot.storage.migrations import LATEST_VERSION, MigrationOrderError, discover

_PACKAGES = itertools.count()


def package(root: Path, modules: dict[str, int]) -> str:
    """A throwaway package holding one migration module per `name: VERSION` (and a helper)."""
    name = f"fake_migrations_{next(_PACKAGES)}"
    folder = root / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "helpers.py").write_text("VALUE = 1\n")  # not a migration: ignored
    for module, version in modules.items():
        (folder / f"{module}.py").write_text(
            f"VERSION = {version}\nNAME = {module!r}\n\n\nasync def upgrade(conn):\n    pass\n"
        )
    return name


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_shipped_migrations_are_every_module_in_version_order() -> None:
    files = sorted(Path(migrations.__file__).parent.glob("v*_*.py"))
    assert [m.version for m in migrations.MIGRATIONS] == list(range(1, len(files) + 1))
    assert len(files) == LATEST_VERSION
    assert migrations.MIGRATIONS[1].name == migrations.v2_jobs.NAME


def test_modules_are_ordered_by_version_not_by_file_name(root: Path) -> None:
    middle = {f"v{n}_m": n for n in range(3, 10)}
    found = discover(package(root, {"v10_last": 10, "v2_b": 2, "v1_a": 1, **middle}))
    assert [m.version for m in found] == list(range(1, 11))
    assert (found[0].name, found[1].name, found[-1].name) == ("v1_a", "v2_b", "v10_last")


@pytest.mark.parametrize(
    ("modules", "problem"),
    [
        ({"v1_a": 1, "v3_c": 3}, r"1\.\.N, each once; found \[1, 3\]"),  # a gap
        ({"v1_a": 1, "v2_b": 2, "v2_again": 2}, r"found \[1, 2, 2\]"),  # a duplicate
        ({"v2_a": 2}, r"found \[2\]"),  # not starting at 1
        ({"v1_a": 1, "v2_b": 3}, "v2_b declares VERSION = 3"),  # name and VERSION disagree
    ],
)
def test_gaps_duplicates_and_mismatches_are_refused(
    root: Path, modules: dict[str, int], problem: str
) -> None:
    with pytest.raises(MigrationOrderError, match=problem):
        discover(package(root, modules))
