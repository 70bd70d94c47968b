"""Start-up database failures in one line: where, why, never the password."""

from __future__ import annotations

import logging
import socket
import traceback

import pytest

from bot.storage.database import Database, DatabaseConfigError
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


PASSWORD = "s3cret-pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://bot:{PASSWORD}@127.0.0.1:1/imagine",  # nothing listens on port 1
        f"mysql+aiomysql://bot:{PASSWORD}@127.0.0.1/imagine",  # a driver the bot does not use
        f"postgresql+asyncpg://bot:{PASSWORD.replace('-', '%2D')}@127.0.0.1:1/imagine",
    ],
)
async def test_a_failing_connect_never_shows_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception) as failed:
        await Database.connect(url, connect_timeout=2)
    error = failed.value
    line = describe_database_failure(url, error, connect_timeout=2)
    logging.getLogger("bot.test").error("%s", line)
    shown = [str(error), repr(error), "".join(traceback.format_exception(error)), line,
             caplog.text]
    assert not [text for text in shown if PASSWORD in text or "s3cret%2Dpw" in text]
    assert "127.0.0.1" in line


def test_the_password_as_typed_in_the_url_is_scrubbed_too() -> None:
    url = "postgresql+asyncpg://bot:p%40ss@db/imagine"  # the password is "p@ss"
    for echoed in ("p@ss", "p%40ss"):
        line = describe_database_failure(url, RuntimeError(f"login failed for {echoed}"))
        assert "p@ss" not in line and "p%40ss" not in line and "********" in line
