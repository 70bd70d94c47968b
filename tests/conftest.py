"""Shared fixtures: database backends (SQLite always, PostgreSQL when reachable or required)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ("tests.db_fixtures",)

_LOGGERS = ("bot", "cogs", "bench", "discord", "aiohttp.access")


@pytest.fixture(autouse=True)
def _restore_logger_levels() -> Iterator[None]:
    """CLI tests run `configure_logging` in-process; keep its levels from leaking to later tests."""
    saved = {name: logging.getLogger(name).level for name in _LOGGERS}
    root_level = logging.getLogger().level
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().setLevel(root_level)
