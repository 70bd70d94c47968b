"""Database health: a live check on both backends; a SQLite file deleted or replaced is noticed
(once, for good), by the periodic watch, by a check, and by a failing write."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.storage.database import Database


async def test_a_healthy_database_checks_out(database: Database) -> None:
    assert database.is_usable
    assert await database.check() is None


async def sqlite_at(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "data" / "imagine.db"
    return await Database.connect(f"sqlite+aiosqlite:///{path}"), path


async def test_deleted_sqlite_file_is_noticed_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, path = await sqlite_at(tmp_path)
    try:
        os.remove(path)
        assert await db.check() == "SQLite file was deleted"
        assert not db.is_usable
        assert await db.check() == "SQLite file was deleted"
        path.touch()  # even a new file in its place does not bring the old data back
        assert not db.verify_file()
    finally:
        await db.close()
    noticed = [r for r in caplog.records if "while the bot was running" in r.getMessage()]
    assert len(noticed) == 1 and noticed[0].levelno == logging.ERROR


async def test_replaced_sqlite_file_is_noticed_by_the_watch(tmp_path: Path) -> None:
    db, path = await sqlite_at(tmp_path)
    try:
        db.start_monitoring(interval=0.01)
        db.start_monitoring(interval=0.01)  # idempotent
        copy = path.with_suffix(".copy")
        shutil.copy(path, copy)
        os.replace(copy, path)  # e.g. a backup restored over the live file
        assert db._monitor is not None
        await asyncio.wait_for(db._monitor, timeout=5)  # the watch ends once it noticed
        assert db.lost_reason == "SQLite file was replaced"
    finally:
        await db.close()


async def test_a_failing_write_looks_at_the_file(tmp_path: Path) -> None:
    db, path = await sqlite_at(tmp_path)
    try:
        os.remove(path)
        with pytest.raises(Exception, match="no such table"):
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
        assert db.lost_reason == "SQLite file was deleted"
    finally:
        await db.close()


@pytest.mark.postgres
async def test_postgres_statements_time_out() -> None:
    from tests.db_fixtures import POSTGRES_URL, require_postgres

    await require_postgres()
    db = await Database.connect(POSTGRES_URL, migrate=False, command_timeout=0.3)
    try:
        with pytest.raises(Exception) as caught:  # pg_sleep(5) would simply return
            async with db.read() as conn:
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert "Timeout" in type(caught.value).__name__ + repr(caught.value)
        assert await db.check(within=2) is None  # the pool recovers for the next caller
    finally:
        await db.close()
