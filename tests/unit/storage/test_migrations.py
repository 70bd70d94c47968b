"""Schema versioning on both backends: fresh start, upgrade from V1 with data, drift, refusal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection

from bot.storage import migrations
from bot.storage.database import Backend, Database, DatabaseConfigError
from bot.storage.migrations import LATEST_VERSION, SchemaTooNewError, current_version
from bot.storage.migrations.v1_core import usage_ledger as v1_ledger
from bot.storage.schema import metadata as current_metadata

if TYPE_CHECKING:
    from tests.db_fixtures import DbTarget


T0 = dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


async def test_fresh_database_is_at_the_latest_version(database: Database) -> None:
    async with database.read() as conn:
        assert await current_version(conn) == LATEST_VERSION
        rows = (await conn.execute(select(migrations.schema_version))).all()
    assert [row.version for row in rows] == [m.version for m in migrations.MIGRATIONS]


async def test_connecting_again_applies_nothing(db_target: DbTarget) -> None:
    first = await db_target.connect()
    await first.close()
    second = await db_target.connect(migrate=False)
    try:
        assert await migrations.migrate(second) == []
    finally:
        await second.close()


async def test_upgrade_from_v1_keeps_data(db_target: DbTarget) -> None:
    old = await db_target.connect(target_version=1)
    try:
        async with old.write() as conn:
            assert await current_version(conn) == 1
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert "usage_ledger" in tables and "job_journal" not in tables
            await conn.execute(
                insert(v1_ledger).values(
                    guild_id=2**62,
                    channel_id=5,
                    user_id=6,
                    prompt="a fox",
                    size="1024*1024",
                    status="succeeded",
                    created_at=T0,
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO guild_settings (guild_id, nsfw_policy, user_daily_quota, "
                    "updated_at) VALUES (1, 'spoiler', 7, 0)"
                )
            )
    finally:
        await old.close()

    new = await db_target.connect()
    try:
        async with new.read() as conn:
            assert await current_version(conn) == LATEST_VERSION
            row = (await conn.execute(select(v1_ledger))).mappings().one()
            settings = (await conn.execute(text("SELECT * FROM guild_settings"))).mappings().one()
            journal = (await conn.execute(text("SELECT count(*) FROM job_journal"))).scalar_one()
        assert row["guild_id"] == 2**62 and row["prompt"] == "a fox"
        assert row["created_at"] == T0  # microseconds survive the float round trip
        assert row["images"] == 1 and row["waived"] is False  # V1 server defaults
        assert settings["nsfw_policy"] == "spoiler" and settings["user_daily_quota"] == 7
        assert journal == 0
    finally:
        await new.close()


async def test_v10_renames_journaled_queued_jobs_to_waiting(db_target: DbTarget) -> None:
    """A job admitted but not yet submitted, journaled by an older release, is taken back as
    `waiting` (may be submitted) after the upgrade; the other stages keep their names."""
    old = await db_target.connect(target_version=9)
    try:
        async with old.write() as conn:
            for job_id, state in ((1, "queued"), (2, "submitting"), (3, "submitted")):
                await conn.execute(text(
                    "INSERT INTO job_journal (job_id, owner_id, shard_id, channel_id, user_id, "
                    f"state, created_at, updated_at) VALUES ({job_id}, 'p', 0, 5, 6, '{state}', "
                    "0, 0)"))
    finally:
        await old.close()
    new = await db_target.connect()
    try:
        async with new.read() as conn:
            rows = (await conn.execute(text(
                "SELECT job_id, state FROM job_journal ORDER BY job_id"))).all()
        assert [tuple(row) for row in rows] == [(1, "waiting"), (2, "submitting"),
                                                (3, "submitted")]
    finally:
        await new.close()


async def test_v11_backfills_billed_spend_by_the_rule_rows_were_counted_by(
    db_target: DbTarget,
) -> None:
    """Succeeded and cancelled rows were billed; failed and refunded ones stay out of spend,
    in the ledger and in the daily totals past retention."""
    old = await db_target.connect(target_version=10)
    try:
        async with old.write() as conn:
            for job_id, status in ((1, "succeeded"), (2, "cancelled"), (3, "failed"),
                                   (4, "refunded")):
                await conn.execute(text(
                    "INSERT INTO usage_ledger (id, guild_id, channel_id, user_id, prompt, size, "
                    f"status, created_at) VALUES ({job_id}, 1, 2, 3, 'p', '512*512', "
                    f"'{status}', 0)"))
                await conn.execute(text(
                    "INSERT INTO usage_daily (day, guild_id, user_id, status, waived, jobs, "
                    f"images, cost_microusd) VALUES (0, 1, {job_id}, '{status}', FALSE, 1, 1, "
                    "20000)"))
    finally:
        await old.close()
    new = await db_target.connect()
    try:
        async with new.read() as conn:
            billed = (await conn.execute(text(
                "SELECT id, billed FROM usage_ledger ORDER BY id"))).all()
            spent = (await conn.execute(text(
                "SELECT user_id, spent_microusd FROM usage_daily ORDER BY user_id"))).all()
        assert [(row[0], bool(row[1])) for row in billed] == [
            (1, True), (2, True), (3, False), (4, False)]
        assert [tuple(row) for row in spent] == [(1, 20000), (2, 20000), (3, 0), (4, 0)]
    finally:
        await new.close()


def _columns(conn: Connection) -> dict[str, set[str]]:
    inspector = inspect(conn)
    return {
        name: {col["name"] for col in inspector.get_columns(name)}
        for name in inspector.get_table_names()
        if name != "schema_version"
    }


async def test_migrations_and_query_schema_agree(database: Database) -> None:
    async with database.read() as conn:
        actual = await conn.run_sync(_columns)
    expected = {t.name: {c.name for c in t.columns} for t in current_metadata.sorted_tables}
    assert actual == expected


async def test_a_newer_schema_is_refused(db_target: DbTarget) -> None:
    db = await db_target.connect()
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(migrations.schema_version).values(
                    version=LATEST_VERSION + 1, name="from the future", applied_at=T0
                )
            )
    finally:
        await db.close()
    with pytest.raises(SchemaTooNewError, match="only knows up to"):
        await db_target.connect()


async def test_failed_migration_leaves_the_old_schema(
    db_target: DbTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await db_target.connect(target_version=1)
    await db.close()

    async def broken(conn: object) -> None:
        await migrations.v2_jobs.upgrade(conn)  # type: ignore[arg-type]
        raise RuntimeError("disk full")

    monkeypatch.setattr(
        migrations,
        "MIGRATIONS",
        (migrations.MIGRATIONS[0], migrations.Migration(2, "broken", broken)),
    )
    with pytest.raises(RuntimeError, match="disk full"):
        await db_target.connect()
    monkeypatch.undo()
    db = await db_target.connect(migrate=False)
    try:
        async with db.read() as conn:
            assert await current_version(conn) == 1
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "job_journal" not in tables
    finally:
        await db.close()


async def test_sqlite_creates_its_folder_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.db"
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        assert path.exists() and db.backend is Backend.SQLITE
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        assert mode == "wal"
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql+aiomysql://u:hunter2@h/db", "use sqlite"),
        ("sqlite+aiosqlite://", "in-memory"),
        ("sqlite+aiosqlite:///:memory:", "in-memory"),
        ("not a url ::", "not a valid"),
    ],
)
async def test_unusable_urls_are_explained_without_secrets(url: str, problem: str) -> None:
    with pytest.raises(DatabaseConfigError, match=problem) as info:
        await Database.connect(url)
    assert "hunter2" not in str(info.value)
