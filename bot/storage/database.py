"""One database handle: engine, backend quirks, transactions with the right kind of lock.

The same code runs on an embedded SQLite file (the default) and on PostgreSQL (for several
processes sharing one ledger). The differences are kept here:

* SQLite: WAL journal (readers never wait for the writer), a busy timeout, and write
  transactions opened with `BEGIN IMMEDIATE` so two writers never both read-then-write; inside
  one process writers also queue on an `asyncio.Lock` so they don't spin on SQLite's busy handler.
* PostgreSQL: write transactions take `pg_advisory_xact_lock` on the keys the caller names (a
  user, a guild, the whole bot); the locks are released by the commit itself. asyncpg gets a
  connect and a command timeout, so an unreachable server fails in seconds, not minutes.

Health: `is_usable` turns False for good once the SQLite file this process opened is deleted or
replaced under it (its open connections would keep writing to a file nobody will read again);
`check()` also pings the server with a short timeout, for readiness probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import BigInteger, Insert, Table, bindparam, event, exc, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BEGIN_MODE: Final = "imagine_sqlite_begin"
# How long a SQLite writer in another process may hold the lock before we give up.
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_COMMAND_TIMEOUT: Final = 10.0
# How often a running bot checks that its SQLite file is still the one it opened.
FILE_CHECK_INTERVAL: Final = 10.0


# Takes the locks one by one in key order (an ordered subquery is not flattened by the planner),
# so transactions locking overlapping sets can never deadlock.
_LOCK_MANY: Final = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM "
    "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
).bindparams(bindparam("keys", type_=postgresql.ARRAY(BigInteger)))


class Backend(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class DatabaseConfigError(ValueError):
    """The database URL (or schema name) cannot be used; says why, never shows a password."""


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_xact_lock` (Python's `hash` is salted)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Database:
    """An async engine plus `read()`/`write()` transactions. Build with `Database.connect`."""

    def __init__(
        self,
        engine: AsyncEngine,
        backend: Backend,
        schema: str | None = None,
        *,
        sqlite_path: Path | None = None,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.schema = schema
        self._write_lock = asyncio.Lock()
        self._sqlite_path = sqlite_path
        self._file_identity: tuple[int, int] | None = None
        self.lost_reason: str | None = None  # set once the SQLite file is gone or replaced
        self._monitor: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        schema: str | None = None,
        migrate: bool = True,
        target_version: int | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> Database:
        """Open the database, create what it needs, and (by default) apply pending migrations.

        `schema` (PostgreSQL only) keeps this bot's tables in their own schema, created if
        missing; tests use it to give every test a clean namespace. The timeouts apply to
        PostgreSQL (SQLite has its busy timeout instead).
        """
        parsed = _parse_url(url)
        backend = _backend_of(parsed)
        sqlite_path: Path | None = None
        if backend is Backend.SQLITE:
            if schema is not None:
                raise DatabaseConfigError("a schema can only be chosen on PostgreSQL")
            engine = _sqlite_engine(parsed)
            sqlite_path = _sqlite_file(parsed)
        else:
            engine = _postgres_engine(parsed, schema, connect_timeout, command_timeout)
        db = cls(engine, backend, schema, sqlite_path=sqlite_path)
        try:
            if schema is not None:
                await db._create_schema(schema)
            if migrate:
                from bot.storage.migrations import migrate as run_migrations

                await run_migrations(db, target_version)
        except BaseException:
            await db.close()
            raise
        db._file_identity = db._current_file_identity()  # None until the file exists
        return db

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None
        await self.engine.dispose()

    # ---- health --------------------------------------------------------------------------------

    @property
    def is_usable(self) -> bool:
        """False once the SQLite file was deleted or replaced under this process (for good)."""
        return self.lost_reason is None

    def verify_file(self) -> bool:
        """Compare the SQLite file with the one opened at start-up; log once when it changed."""
        if self.lost_reason is not None or self._file_identity is None:
            return self.lost_reason is None
        current = self._current_file_identity()
        if current == self._file_identity:
            return True
        self.lost_reason = (
            "SQLite file was deleted" if current is None else "SQLite file was replaced"
        )
        log.error(
            "the database file %s was %s while the bot was running; new jobs are refused "
            "until the bot is restarted (restore the file first if it was not meant to go)",
            self._sqlite_path,
            "deleted" if current is None else "replaced by another file",
        )
        return False

    async def check(self, within: float = 2.0) -> str | None:
        """None when the database answers a trivial query `within` seconds, else why not."""
        if not self.verify_file():
            return self.lost_reason
        try:
            async with asyncio.timeout(within):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError:
            return f"database did not answer within {within:g} s"
        except (OSError, exc.SQLAlchemyError) as error:
            return f"database unreachable ({type(error).__name__})"
        return None

    def start_monitoring(self, interval: float = FILE_CHECK_INTERVAL) -> None:
        """Check the SQLite file every `interval` seconds (idempotent; no-op on PostgreSQL)."""
        if self._file_identity is None or self._monitor is not None:
            return
        self._monitor = asyncio.create_task(self._watch(interval), name="sqlite-file-watch")

    async def _watch(self, interval: float) -> None:
        while True:
            if not self.verify_file():
                return  # logged once; admissions and /readyz now say so
            await asyncio.sleep(interval)

    def _current_file_identity(self) -> tuple[int, int] | None:
        if self._sqlite_path is None:
            return None
        try:
            info = os.stat(self._sqlite_path)
        except OSError:
            return None
        return (info.st_dev, info.st_ino)

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for reading (never blocks writers on either backend)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self, lock_keys: Iterable[str] = ()) -> AsyncIterator[AsyncConnection]:
        """A transaction that changes data; commits on success, rolls back on error.

        `lock_keys` name what the transaction reads-then-writes (e.g. `"user:1:2"`): on
        PostgreSQL each becomes an advisory lock held until commit, taken in a fixed order so
        two transactions can't deadlock. SQLite locks the whole file, so keys are not needed.
        """
        if self.backend is Backend.SQLITE:
            try:
                async with self._write_lock, self.engine.connect() as conn:
                    await conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
                    async with conn.begin():
                        yield conn
            except exc.DBAPIError:
                self.verify_file()  # a failing write is a good moment to look at the file
                raise
            return
        async with self.engine.connect() as conn, conn.begin():
            keys = sorted({advisory_key(name) for name in lock_keys})
            if len(keys) == 1:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": keys[0]})
            elif keys:  # one round trip for a whole admission batch, still in key order
                await conn.execute(_LOCK_MANY, {"keys": keys})
            yield conn

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that understands `on_conflict_do_nothing/update` on this backend."""
        if self.backend is Backend.SQLITE:
            return sqlite.insert(table)
        return postgresql.insert(table)

    async def upsert(
        self, conn: AsyncConnection, table: Table, keys: dict[str, Any], values: dict[str, Any]
    ) -> None:
        """Insert a row, or update `values` on the row that has these primary `keys`."""
        stmt = self.insert(table).values(**keys, **values)
        await conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=values))

    async def insert_ignoring_duplicate(
        self, conn: AsyncConnection, table: Table, values: dict[str, Any]
    ) -> bool:
        """Insert a row unless its key exists; True when a row was added."""
        stmt: Insert = self.insert(table).values(**values).on_conflict_do_nothing()
        result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def _create_schema(self, schema: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except Exception:  # SQLAlchemy raises several types; the message may echo the password
        raise DatabaseConfigError(
            "DATABASE_URL is not a valid SQLAlchemy URL "
            "(e.g. sqlite+aiosqlite:///data/imagine.db)"
        ) from None


def _backend_of(url: URL) -> Backend:
    if url.drivername == "sqlite+aiosqlite":
        return Backend.SQLITE
    if url.drivername == "postgresql+asyncpg":
        return Backend.POSTGRESQL
    raise DatabaseConfigError(
        f"DATABASE_URL uses {url.drivername!r}; use sqlite+aiosqlite:///path/to/file.db "
        "or postgresql+asyncpg://user:password@host/dbname"
    )


def _sqlite_engine(url: URL) -> AsyncEngine:
    path = url.database
    if not path or path == ":memory:" or url.query.get("mode") == "memory":
        raise DatabaseConfigError(
            "an in-memory SQLite database is not shared between connections; use a file path"
        )
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, hide_parameters=True)  # rows may hold a token

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module so we decide DEFERRED vs IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL, much faster
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _sqlite_file(url: URL) -> Path:
    return Path(url.database or "").expanduser()


def _postgres_engine(
    url: URL, schema: str | None, connect_timeout: float, command_timeout: float
) -> AsyncEngine:
    connect_args: dict[str, Any] = {"timeout": connect_timeout, "command_timeout": command_timeout}
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise DatabaseConfigError(f"schema name {schema!r} must match {_SCHEMA_NAME.pattern}")
        connect_args["server_settings"] = {"search_path": schema}
    # Statement parameters stay out of error text: a journal row holds an interaction token.
    return create_async_engine(
        url, connect_args=connect_args, pool_pre_ping=True, hide_parameters=True
    )
