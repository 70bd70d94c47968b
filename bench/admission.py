"""`python -m bench.admission`: admission alone, admissions per second from distinct members.

    python -m bench.admission [--members 5000] [--postgres URL] [--json FILE]

Two cases, each on a fresh database with the bot's default limits:
* SQLite, one process: `members` distinct members ask at once (one `admit` each, all awaited
  together), so the group commit decides them in as few transactions as it can;
* PostgreSQL, two processes (`--worker`): each admits half of the members against one schema,
  released together; the rate is all members over the span from the first start to the last end.
Prints a table and writes JSON (`bench/results/admission_bench.json` by default). Also part of
`python -m bench --quick`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Final

from sqlalchemy import text

from bot.config import Settings
from bot.imaging import ImageSize
from bot.jobs.model import JobRequest
from bot.limits.admission import AdmissionService
from bot.limits.policy import LimitPolicy
from bot.storage.database import Database
from bot.storage.repository_set import Repositories

DEFAULT_JSON: Final = Path(__file__).resolve().parent / "results" / "admission_bench.json"
DEFAULT_POSTGRES: Final = os.environ.get(
    "IMAGINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
GUILD: Final = 4242
ROOT: Final = Path(__file__).resolve().parents[1]


def _requests(first_member: int, count: int) -> list[JobRequest]:
    return [
        JobRequest(GUILD, 1, first_member + k, f"admission bench {k}: a fox", ImageSize(1024, 1024))
        for k in range(count)
    ]


def _policy() -> LimitPolicy:
    return LimitPolicy.from_settings(Settings())


async def _admit_all(service: AdmissionService, requests: list[JobRequest]) -> tuple[int, float]:
    """(admitted, seconds) for all `requests` sent at once."""
    started = time.monotonic()
    answers = await asyncio.gather(*(service.admit(r) for r in requests))
    return sum(a.allowed for a in answers), time.monotonic() - started


async def sqlite_case(members: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="admission-bench-") as tmp:
        db = await Database.connect(f"sqlite+aiosqlite:///{Path(tmp) / 'imagine.db'}")
        service = AdmissionService(Repositories.over(db), _policy())
        try:
            await _admit_all(service, _requests(10_000_000, 20))  # warm up: pool, caches
            batches_before = service._batcher.batches
            admitted, seconds = await _admit_all(service, _requests(0, members))
            batches = service._batcher.batches - batches_before
        finally:
            await service.close()
            await db.close()
    return _record("sqlite", 1, members, admitted, seconds, batches)


async def postgres_case(members: int, url: str) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    db = await Database.connect(url, schema=schema)  # migrate once, before the workers race
    half = members // 2
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.admission", "--worker", url, "--schema", schema,
            "--first", str(k * half), "--members", str(half),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
        )
        for k in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"admission worker did not start: {line!r}")
        outputs = await asyncio.gather(*(w.communicate(b"go\n") for w in workers))
        results = [json.loads(out.decode().splitlines()[-1]) for out, _ in outputs]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        async with db.write() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await db.close()
    span = max(r["ended"] for r in results) - min(r["started"] for r in results)
    record = _record(
        "postgresql", 2, half * 2, sum(r["admitted"] for r in results), span,
        sum(r["batches"] for r in results),
    )
    record["per_process_per_s"] = [round(r["admitted"] / r["seconds"]) for r in results]
    return record


async def worker(url: str, schema: str, first: int, members: int) -> None:
    """One of the PostgreSQL processes: ready, wait for `go`, admit, print JSON."""
    db = await Database.connect(url, schema=schema, migrate=False)
    service = AdmissionService(Repositories.over(db), _policy())
    try:
        await _admit_all(service, _requests(20_000_000 + first, 20))  # warm up
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        batches_before = service._batcher.batches
        started = time.monotonic()
        admitted, seconds = await _admit_all(service, _requests(first, members))
        print(json.dumps({
            "admitted": admitted, "seconds": seconds, "started": started,
            "ended": started + seconds, "batches": service._batcher.batches - batches_before,
        }), flush=True)
    finally:
        await service.close()
        await db.close()


def _record(
    database: str, processes: int, members: int, admitted: int, seconds: float, batches: int
) -> dict[str, Any]:
    return {
        "database": database,
        "processes": processes,
        "members": members,
        "admitted": admitted,
        "seconds": round(seconds, 3),
        "admissions_per_s": round(admitted / seconds) if seconds > 0 else None,
        "transactions": batches,
        "cpu_count": os.cpu_count(),
    }


def render(records: list[dict[str, Any]]) -> str:
    lines = [
        "| database | processes | members | admitted | seconds | admissions/s | transactions |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['database']} | {r['processes']} | {r['members']} | {r['admitted']} | "
            f"{r['seconds']} | {r['admissions_per_s']} | {r['transactions']} |"
        )
    return "\n".join(lines)


async def run(members: int, postgres: str | None) -> list[dict[str, Any]]:
    records = [await sqlite_case(members)]
    if postgres:
        try:
            records.append(await postgres_case(members, postgres))
        except Exception as exc:  # e.g. no server here: say so, keep the SQLite figure
            print(f"PostgreSQL case skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
    return records


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.admission", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=5000, help="distinct members (default 5000)")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES,
                   help="PostgreSQL URL for the two-process case ('' to skip)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    p.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--schema", help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        asyncio.run(worker(args.worker, args.schema, args.first, args.members))
        return 0
    records = asyncio.run(run(args.members, args.postgres or None))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "admission", "runs": records}, indent=2) + "\n")
    print(render(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
