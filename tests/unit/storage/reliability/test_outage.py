"""The one outage predicate: which errors mean "the database is unreachable", which are bugs."""

from __future__ import annotations

import asyncpg.exceptions as pg
import pytest
from sqlalchemy import exc

from bot.storage.reliability.outage import is_database_unavailable


class ConnectionResetByDriverError(Exception):
    """A driver error named after the connection, as some drivers raise on a lost socket."""


def _wrapped(
    kind: type[exc.DBAPIError], orig: BaseException, *, invalidated: bool = False
) -> exc.DBAPIError:
    return kind("SELECT 1", None, orig, connection_invalidated=invalidated)


# Both former predicates (failures.database_unreachable, outage.is_database_unavailable)
# answered True for these.
ALWAYS_UNAVAILABLE = [
    OSError("network is unreachable"),
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
    _wrapped(exc.OperationalError, Exception("server closed the connection")),
    _wrapped(exc.InterfaceError, Exception("connection is closed")),
    exc.DisconnectionError("gone"),
    exc.TimeoutError("QueuePool limit reached"),
]

# Only outage.is_database_unavailable answered True for these; failures.database_unreachable
# (used by the admission and remix paths) said False and so reported an outage as a bug with an
# error id. Each is the database not answering, not a fault in a query, so True is right.
LOST_CONNECTION_UNDER_ANOTHER_NAME = [
    _wrapped(exc.ProgrammingError, Exception("terminating connection"), invalidated=True),
    _wrapped(exc.DBAPIError, ConnectionResetError(104, "Connection reset by peer")),
    _wrapped(exc.DBAPIError, pg.ConnectionDoesNotExistError("connection was closed")),
    _wrapped(exc.DBAPIError, ConnectionResetByDriverError("lost")),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg.QueryCanceledError("canceling statement due to statement timeout"),
    pg.CannotConnectNowError("the database system is starting up"),
]

# Neither predicate called these an outage: they are bugs or bad data, reported with an id.
NEVER_UNAVAILABLE = [
    _wrapped(exc.ProgrammingError, Exception("syntax error at or near")),
    _wrapped(exc.IntegrityError, Exception("duplicate key value")),
    _wrapped(exc.DataError, ValueError("invalid input")),
    pg.UniqueViolationError("duplicate key value violates unique constraint"),
    RuntimeError("boom"),
    ValueError("bad"),
    KeyError("missing"),
]


@pytest.mark.parametrize("error", ALWAYS_UNAVAILABLE, ids=repr)
def test_unreachable_or_stalled_database_is_an_outage(error: BaseException) -> None:
    assert is_database_unavailable(error)


@pytest.mark.parametrize("error", LOST_CONNECTION_UNDER_ANOTHER_NAME, ids=repr)
def test_a_lost_connection_is_an_outage_whatever_class_carries_it(error: BaseException) -> None:
    assert is_database_unavailable(error)


@pytest.mark.parametrize("error", NEVER_UNAVAILABLE, ids=repr)
def test_query_bugs_are_not_an_outage(error: BaseException) -> None:
    assert not is_database_unavailable(error)
