"""Why the database could not be opened, in one line an operator can act on.

Start-up turns whatever SQLAlchemy, asyncpg, aiosqlite or the OS raised into a single sentence
naming where the database is (host and port, or the SQLite file) and the cause. The password in
`DATABASE_URL` never appears: locations are rebuilt from the parsed URL without it, and any text
taken from an exception is scrubbed of it as well.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy import exc, make_url
from sqlalchemy.engine import URL

from bot.storage.database import DatabaseConfigError

MAX_CAUSE_CHARS: Final = 240
POSTGRES_DEFAULT_PORT: Final = 5432


def describe_location(url: str) -> str:
    """Where `url` points, never with its password: 'PostgreSQL at db.example:5432/imagine'."""
    parsed = _try_parse(url)
    if parsed is None:
        return "DATABASE_URL"
    if parsed.drivername.startswith("sqlite"):
        return f"SQLite file {parsed.database or '(none)'}"
    if parsed.drivername.startswith("postgresql"):
        port = parsed.port or POSTGRES_DEFAULT_PORT
        return f"PostgreSQL at {parsed.host or 'localhost'}:{port}/{parsed.database or ''}"
    # Any other driver: the URL itself, with its password masked as SQLAlchemy masks it.
    return f"{parsed.drivername} database at {parsed.render_as_string(hide_password=True)}"


def describe_cause(error: BaseException, *, connect_timeout: float | None = None) -> str:
    """The cause of a failed connection, in a few words."""
    if isinstance(error, DatabaseConfigError):
        return str(error)
    if isinstance(error, TimeoutError):
        within = f" within {connect_timeout:g} s" if connect_timeout else ""
        return f"no answer{within} (is the host reachable, or a firewall dropping packets?)"
    if isinstance(error, socket.gaierror):
        return "the host name cannot be resolved (check the spelling and DNS)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening on that port?)"
    if isinstance(error, PermissionError):
        return f"permission denied ({error.filename or error.strerror})"
    if isinstance(error, exc.DBAPIError):
        # The driver's own text: e.g. 'password authentication failed for user "bot"'.
        original = error.orig if error.orig is not None else error
        return _first_line(str(original)) or type(original).__name__
    if isinstance(error, OSError):
        cause = _first_line(error.strerror or str(error)) or type(error).__name__
        return f"{cause} ({error.filename})" if error.filename else cause
    return f"{type(error).__name__}: {_first_line(str(error))}"


def describe_database_failure(
    url: str, error: BaseException, *, connect_timeout: float | None = None
) -> str:
    """One line: 'cannot open the database (PostgreSQL at h:5432/db): connection refused …'."""
    line = (
        f"imagine-bot cannot start: cannot open the database "
        f"({describe_location(url)}): {describe_cause(error, connect_timeout=connect_timeout)}. "
        "Check DATABASE_URL."
    )
    return _scrub(line, url)


def _try_parse(url: str) -> URL | None:
    try:
        return make_url(url)
    except Exception:  # any parse failure: the caller falls back to a generic name
        return None


def _first_line(text: str) -> str:
    line = " ".join(text.strip().split("\n", 1)[0].split())
    if line.startswith("(") and ") " in line:  # "(sqlalchemy…Error) text": keep the text
        line = line.split(") ", 1)[1]
    return line[:MAX_CAUSE_CHARS]


def _scrub(line: str, url: str) -> str:
    """The line without the password, as parsed (decoded) or as typed in the URL (encoded)."""
    parsed = _try_parse(url)
    forms = {str(parsed.password) if parsed is not None and parsed.password else ""}
    with contextlib.suppress(ValueError):  # a URL urllib cannot split has no typed form
        forms.add(urlsplit(url).password or "")
    for password in sorted(forms - {""}, key=len, reverse=True):
        line = line.replace(password, "********")
    return " ".join(line.split())

