"""`python -m bench`: the whole-bot load benchmark (see bench/README.md).

    python -m bench --quick --json FILE     # about 4 minutes on 2 cores
    python -m bench                         # full: every poller at every N, real time

Per run: fresh mock Novita, fake Discord and bot processes; a burst of N distinct members (or a
steady arrival rate); a table on stdout and a JSON object `{"machine", "settings", "runs"}`
with one record per N and poller.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import admission
from bench.load.runner import POLLERS, RunSpec, run_once
from bench.load.table import render

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "load_bench.json"
QUICK_TIME_SCALE = 0.1
FULL_TIME_SCALE = 1.0


def plan(args: argparse.Namespace) -> list[RunSpec]:
    """Quick: adaptive at every N, the other pollers beside it at N=50, a short steady run, all
    time-scaled; then the large bursts again at real speed (`--real-time-at`), because scaling
    turns their 20-40 s of finishing jobs into a 2-4 s storm of downloads and uploads that
    no real server sees (both are reported). Full: every poller at every N, real time, and a
    60 s steady run each."""
    ts = args.time_scale or (QUICK_TIME_SCALE if args.quick else FULL_TIME_SCALE)
    sizes = [int(n) for n in args.n.split(",")] if args.n else [1, 50, 200, 1000]
    pollers = args.pollers.split(",") if args.pollers else list(POLLERS)
    compare_at = set(sizes) if not args.quick else {args.compare_at}
    specs: list[RunSpec] = []
    for n in sizes:
        for name in pollers:
            if name != "adaptive" and n not in compare_at:
                continue
            profile = None
            if args.profile is not None and name == "adaptive" and n == max(sizes):
                profile = args.profile
            specs.append(RunSpec(n, POLLERS[name], ts, seed=args.seed, profile=profile))
    if args.steady_seconds > 0:
        count = round(args.steady_rate * args.steady_seconds)
        for name in pollers if not args.quick else ["adaptive"]:
            specs.append(RunSpec(count, POLLERS[name], ts, mode="steady",
                                 rate=args.steady_rate, seed=args.seed))
    if ts != FULL_TIME_SCALE and "adaptive" in pollers:
        real_at = [int(n) for n in args.real_time_at.split(",") if n.strip()]
        specs.extend(RunSpec(n, POLLERS["adaptive"], FULL_TIME_SCALE, seed=args.seed)
                     for n in real_at)
    return specs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the quick mode (time scale 0.1)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the JSON")
    p.add_argument("--time-scale", type=float, default=None,
                   help="durations multiplied by this (quick 0.1, full 1.0)")
    p.add_argument("--n", default=None, help="burst sizes, comma-separated (default 1,50,200,1000)")
    p.add_argument("--pollers", default=None,
                   help=f"comma-separated among {','.join(POLLERS)} (default all)")
    p.add_argument("--compare-at", type=int, default=50,
                   help="quick mode: the N at which every poller runs (default 50)")
    p.add_argument("--real-time-at", default="200,1000",
                   help="with a time scale below 1: bursts also run at real speed, "
                        "comma-separated (default 200,1000; '' = none)")
    p.add_argument("--steady-rate", type=float, default=20.0, help="steady arrivals per second")
    p.add_argument("--steady-seconds", type=float, default=None,
                   help="steady mode length (quick 10, full 60; 0 = no steady run)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", type=Path, default=None,
                   help="pyinstrument text report of the bot in the largest adaptive burst")
    p.add_argument("--workdir", type=Path, default=None, help="keep every process's log here")
    p.add_argument("--admission-members", type=int, default=5000,
                   help="admission alone (bench.admission): distinct members; 0 = skip")
    p.add_argument("--postgres", default=admission.DEFAULT_POSTGRES,
                   help="PostgreSQL URL for the two-process admission case ('' to skip)")
    return p


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


async def run_all(specs: list[RunSpec], workdir: Path) -> list[dict[str, Any]]:
    records = []
    for spec in specs:
        print(f"… {spec.name} (time scale {spec.time_scale:g})", file=sys.stderr, flush=True)
        records.append(await run_once(spec, workdir / spec.name))
    return records


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.steady_seconds is None:
        args.steady_seconds = 10.0 if args.quick else 60.0
    specs = plan(args)
    started = time.monotonic()
    about = machine()
    if args.workdir is not None:
        records = asyncio.run(run_all(specs, args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
            records = asyncio.run(run_all(specs, Path(tmp)))
    admissions: list[dict[str, Any]] = []
    if args.admission_members > 0:
        print("… admission alone", file=sys.stderr, flush=True)
        admissions = asyncio.run(admission.run(args.admission_members, args.postgres or None))
    result = {
        "benchmark": "whole-bot load",
        "quick": args.quick,
        "machine": about,
        "seconds": round(time.monotonic() - started, 1),
        "runs": records,
        "admission": admissions,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(render(records))
    if admissions:
        print("\nAdmission alone (distinct members, default limits):\n")
        print(admission.render(admissions))
    print(f"\n* detection delay in unscaled seconds; everything else real time. "
          f"{about['cpu_count']} CPUs, {time.monotonic() - started:.0f} s. JSON: {args.json}")
    lost = sum(record["lost"] for record in records)
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
