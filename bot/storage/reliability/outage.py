"""Is this error the database being unreachable, and one log line per outage (not per request).

While PostgreSQL is down every command, heartbeat and end-of-job write fails the same way; the
operator needs to hear once that it went away and once that it came back, not a traceback for
each member who clicked something.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy import exc

log = logging.getLogger("bot.storage")

# Without a success to end it, an outage is over this long after its last failure.
QUIET_AFTER: Final = 60.0


def is_database_unavailable(error: BaseException) -> bool:
    """The database could not be reached or did not answer in time (not a bug in a query).

    The one outage predicate: such a failure is worth a "try again in a minute", anything else
    is an error to report with an id. A lost connection counts whichever class carries it (an
    OS error, SQLAlchemy's wrapper, or asyncpg's own exception).
    """
    if isinstance(error, TimeoutError | ConnectionError | OSError):
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return isinstance(error, exc.OperationalError | exc.InterfaceError) or _driver_lost(error)
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):
        return True
    return type(error).__module__.startswith("asyncpg") and _asyncpg_connection_error(error)


def _driver_lost(error: exc.DBAPIError) -> bool:
    original = error.orig
    return original is not None and (
        isinstance(original, TimeoutError | ConnectionError | OSError)
        or _asyncpg_connection_error(original)
        or "connection" in type(original).__name__.lower()
    )


def _asyncpg_connection_error(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"PostgresConnectionError", "InterfaceError", "ConnectionDoesNotExistError",
                         "QueryCanceledError", "CannotConnectNowError"})


class OutageLog:
    """Logs the first failure of an outage and the first success after it; nothing between."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None
        self._last_failure = 0.0
        self.failures = 0  # failures seen in the current outage

    @property
    def in_outage(self) -> bool:
        return self._since is not None and self._clock() - self._last_failure < QUIET_AFTER

    def failed(self, error: BaseException, doing: str) -> None:
        now = self._clock()
        if not self.in_outage:
            self._since = now
            self.failures = 0
            log.warning(
                "database unavailable while %s (%s); answering 'try again in a minute' and "
                "retrying writes until it is back", doing, _short(error)
            )
        self._last_failure = now
        self.failures += 1

    def succeeded(self) -> None:
        if self._since is None:
            return
        log.info(
            "database reachable again after %.0f s (%d failed attempts meanwhile)",
            self._clock() - self._since, self.failures,
        )
        self._since = None
        self.failures = 0


def _short(error: BaseException) -> str:
    """The driver's own words (never SQLAlchemy's text, which can quote statement values)."""
    original = getattr(error, "orig", None) or error
    if isinstance(original, exc.StatementError):
        return type(original).__name__
    text = " ".join(str(original).split())[:160]
    return f"{type(original).__name__}: {text}" if text else type(original).__name__
