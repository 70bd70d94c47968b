"""Database fixtures: every storage test runs on SQLite and on PostgreSQL.

Use from a test module with `pytest_plugins = ("tests.db_fixtures",)` (or list it in the root
conftest). `database` is a migrated `Database`, parametrised over both backends. The
PostgreSQL case uses `IMAGINE_TEST_POSTGRES_URL` (default: trust auth on 127.0.0.1), gets a fresh
schema per test, skips when no server answers, and fails instead when
`IMAGINE_REQUIRE_POSTGRES=1`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
import pytest
from sqlalchemy import make_url

from bot.storage.database import Database
from fakes.clock import ManualUtcClock

POSTGRES_URL: Final = os.environ.get(
    "IMAGINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES: Final = os.environ.get("IMAGINE_REQUIRE_POSTGRES", "") == "1"

_postgres_problem: list[str | None] = []  # cached result of the first reachability check


@dataclass(frozen=True)
class DbTarget:
    backend: str
    url: str
    schema: str | None = None

    async def connect(self, **kwargs: object) -> Database:
        return await Database.connect(self.url, schema=self.schema, **kwargs)  # type: ignore[arg-type]


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres_unavailable() -> str | None:
    if not _postgres_problem:
        try:
            conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            _postgres_problem.append(f"PostgreSQL not reachable ({type(exc).__name__}: {exc})")
        else:
            await conn.close()
            _postgres_problem.append(None)
    return _postgres_problem[0]


async def require_postgres() -> None:
    """Skip the test without PostgreSQL, or fail it when PostgreSQL is mandatory."""
    problem = await _postgres_unavailable()
    if problem is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"IMAGINE_REQUIRE_POSTGRES=1 but {problem}")
    pytest.skip(problem)


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_target(db_backend: str, tmp_path: Path) -> AsyncIterator[DbTarget]:
    """Where a test's database lives; nothing is created yet."""
    if db_backend == "sqlite":
        yield DbTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'imagine.db'}")
        return
    await require_postgres()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    try:
        yield DbTarget("postgres", POSTGRES_URL, schema)
    finally:
        await drop_schema(schema)


@pytest.fixture
async def database(db_target: DbTarget) -> AsyncIterator[Database]:
    db = await db_target.connect()
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def utc_clock() -> ManualUtcClock:
    return ManualUtcClock()
