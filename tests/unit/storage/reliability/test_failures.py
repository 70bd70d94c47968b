"""Start-up database failures in one line: where, why, never the password."""

from __future__ import annotations

import socket

import pytest

from bot.storage.database import DatabaseConfigError
from bot.storage.reliability.failures import describe_database_failure, describe_location

URL = "postgresql+asyncpg://bot:hunter2@db.example:6543/imagine"


@pytest.mark.parametrize(
    ("url", "where"),
    [
        (URL, "PostgreSQL at db.example:6543/imagine"),
        ("postgresql+asyncpg://bot@db/imagine", "PostgreSQL at db:5432/imagine"),
        ("sqlite+aiosqlite:///data/imagine.db", "SQLite file data/imagine.db"),
        ("::not a url::", "DATABASE_URL"),
    ],
)
def test_locations_name_the_host_without_credentials(url: str, where: str) -> None:
    assert describe_location(url) == where


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "cannot be resolved"),
        (TimeoutError(), "no answer within 5 s"),
        (NotADirectoryError(20, "Not a directory", "/srv/file"), "Not a directory (/srv/file)"),
        (DatabaseConfigError("DATABASE_URL uses 'mysql'"), "DATABASE_URL uses 'mysql'"),
        (RuntimeError("password authentication failed for hunter2\nDETAIL: more"),
         "RuntimeError: password authentication failed for ********."),
    ],
)
def test_one_line_with_the_cause_and_no_password(error: BaseException, cause: str) -> None:
    line = describe_database_failure(URL, error, connect_timeout=5)
    assert "\n" not in line
    assert "hunter2" not in line
    assert line.startswith(
        "imagine-bot cannot start: cannot open the database (PostgreSQL at db.example:6543/"
    )
    assert cause in line
