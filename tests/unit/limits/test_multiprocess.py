"""Limits hold across OS processes sharing one database (PostgreSQL, and SQLite too)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.storage.repositories.ledger import UsageLedger

if TYPE_CHECKING:
    from bot.storage.database import Database
    from tests.db_fixtures import DbTarget


REPO_ROOT = Path(__file__).resolve().parents[3]


async def _start_worker(target: DbTarget, members: int = 1) -> asyncio.subprocess.Process:
    args = [target.url, "--count", "10", "--per-window", "3", "--members", str(members)]
    if target.schema:
        args += ["--schema", target.schema]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.unit.limits.limits_worker",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )


async def _admitted(worker: asyncio.subprocess.Process) -> int:
    out, err = await worker.communicate(b"go\n")
    assert worker.returncode == 0, err.decode()
    return int(json.loads(out.decode().splitlines()[-1])["admitted"])


@contextlib.asynccontextmanager
async def _two_racing_workers(
    target: DbTarget, members: int = 1
) -> AsyncIterator[tuple[Database, list[int]]]:
    """Two worker processes, started together, each asking for its members' admissions at once;
    yields the database (migrated once, before the race) and how many each process admitted."""
    db = await target.connect()
    workers = [await _start_worker(target, members) for _ in range(2)]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 30)
            assert line.strip() == b"ready", line
        admitted = await asyncio.wait_for(asyncio.gather(*map(_admitted, workers)), 30)
        yield db, list(admitted)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        await db.close()


@pytest.mark.timeout(60)
async def test_twenty_admissions_from_two_processes_admit_exactly_three(
    db_target: DbTarget,
) -> None:
    async with _two_racing_workers(db_target) as (db, admitted):
        assert sum(admitted) == 3
        assert (await UsageLedger(db).history(1)).total == 3


@pytest.mark.timeout(60)
async def test_batches_of_several_members_from_two_processes_admit_exactly_three_each(
    db_target: DbTarget,
) -> None:
    """Each process decides its members' requests in one transaction (several locks at once)."""
    async with _two_racing_workers(db_target, members=4) as (db, admitted):
        assert sum(admitted) == 4 * 3
        history = await UsageLedger(db).history(1, limit=100)
        assert sorted(e.user_id for e in history.entries) == sorted([7, 8, 9, 10] * 3)
