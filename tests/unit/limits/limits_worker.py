"""A separate OS process that fires many admissions at once (for the cross-process test).

    python -m tests.unit.limits.limits_worker URL [--schema S] --count 10 --per-window 3 --user 7

Prints `ready` once connected, waits for one line on stdin (so the test can release several
workers together), then admits `count` requests for each of `members` users concurrently
and prints `{"admitted": n}`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys

from bot.imaging import ImageSize
from bot.jobs.model import JobRequest
from bot.limits.admission import AdmissionService
from bot.limits.policy import GuildLimits, LimitPolicy, UserLimits
from bot.storage.database import Database
from bot.storage.repository_set import Repositories


async def run(args: argparse.Namespace) -> int:
    db = await Database.connect(args.url, schema=args.schema)
    try:
        policy = LimitPolicy(
            UserLimits(args.per_window, dt.timedelta(minutes=10), 0, 0), GuildLimits(0, 0, 0.0)
        )
        service = AdmissionService(Repositories.over(db), policy)
        async with db.read():
            pass  # open a pooled connection before the start signal
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        requests = [
            JobRequest(args.guild, 1, args.user + member, "a fox", ImageSize(512, 512))
            for _ in range(args.count)
            for member in range(args.members)
        ]
        results = await asyncio.gather(*(service.admit(request) for request in requests))
        print(json.dumps({"admitted": sum(a.allowed for a in results)}), flush=True)
    finally:
        await db.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--schema")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--per-window", type=int, default=3)
    parser.add_argument("--guild", type=int, default=1)
    parser.add_argument("--user", type=int, default=7)
    parser.add_argument("--members", type=int, default=1, help="users --user, --user + 1, …")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
