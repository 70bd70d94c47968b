"""Poll benchmark: the adaptive planner against the pollers other Novita clients use.

    python -m bench.poll_bench [--jobs N] [--time-scale S] [--seed K] [--out path.json] [--quick]

Every contender runs the *same* jobs through the *same* `JobEngine` and `NovitaClient` over real
loopback sockets; only the `PollStrategy` differs. Each contender gets its own mock Novita with
the same seed, and submits are made in job order, so job k takes exactly as long for everyone.
Time is scaled down (`--time-scale 0.1` makes a 20 s job take 2 s): the mock's durations and the
engine's clock and sleep are scaled together, so every interval and figure below is reported in
unscaled, real-world seconds.

Detection delay = when the poller saw SUCCEED minus when the mock flipped the task to SUCCEED.
The adaptive planner starts from the duration prior and learns from every finished job during
the run (no warm-up unless `--warmup N`, whose jobs are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.config import Secret
from bot.imaging import ImageSize
from bot.jobs.durations import DurationModel
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.polling import AdaptivePlanner, ExponentialBackoff, FixedInterval, PollStrategy
from bot.novita.client import NovitaClient
from bot.novita.models import GeneratedImage, TaskResult, TaskStatus
from fakes.novita.server import MockNovita, MockNovitaConfig

DEFAULT_OUT = Path(__file__).parent / "results" / "poll_bench.json"
SIZES = (
    ImageSize(512, 512),
    ImageSize(768, 1024),
    ImageSize(1024, 1024),
    ImageSize(1024, 1536),
    ImageSize(1536, 1536),
)
BASELINE = "fixed 0.5 s"


@dataclass(frozen=True)
class Contender:
    name: str
    description: str
    planner: PollStrategy
    max_interval: float  # what the engine's JobSettings allow (only the adaptive planner reads it)


CONTENDERS = (
    Contender(BASELINE, "Novita Python SDK", FixedInterval(0.5), 0.5),
    Contender("fixed 3 s", "Novita CLI", FixedInterval(3.0), 3.0),
    Contender("backoff 2 s ×1.3 ≤ 5 s", "best third-party design",
              ExponentialBackoff(2.0, 1.3, 5.0), 5.0),
    Contender("adaptive (max 5 s)", "this bot, POLL_MAX_INTERVAL_SECONDS=5",
              AdaptivePlanner(min_interval=0.5, max_interval=5.0), 5.0),
    Contender("adaptive (max 10 s)", "this bot, POLL_MAX_INTERVAL_SECONDS=10",
              AdaptivePlanner(min_interval=0.5, max_interval=10.0), 10.0),
)


@dataclass
class JobRecord:
    size: str
    polls: int
    detection_delay: float  # unscaled seconds
    queued: bool


@dataclass
class ContenderResult:
    name: str
    description: str
    jobs: int
    failures: int
    polls_per_job: float
    polls_relative: float
    delay_p50: float
    delay_p90: float
    delay_p99: float
    delay_mean: float
    records: list[JobRecord] = field(default_factory=list)


class WatchingClient:
    """Wraps the real client: submits in job order, notes when SUCCEED was first seen."""

    def __init__(self, inner: NovitaClient) -> None:
        self.inner = inner
        self.noticed: dict[str, float] = {}
        self._submit_lock = asyncio.Lock()

    async def submit(self, prompt: str, size: ImageSize) -> str:
        async with self._submit_lock:  # the k-th submit gets the mock's k-th planned duration
            return await self.inner.submit(prompt, size)

    async def get_task(self, task_id: str) -> TaskResult:
        result = await self.inner.get_task(task_id)
        if result.status is TaskStatus.SUCCEED:
            self.noticed.setdefault(task_id, time.monotonic())
        return result

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        return await self.inner.download(image, task_id=task_id)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def workload(jobs: int, seed: int) -> list[ImageSize]:
    rng = random.Random(seed)
    return [rng.choice(SIZES) for _ in range(jobs)]


async def run_jobs(
    contender: Contender,
    sizes: Sequence[ImageSize],
    *,
    time_scale: float,
    seed: int,
    concurrency: int,
    durations: DurationModel,
) -> tuple[list[JobRecord], int]:
    config = MockNovitaConfig(time_scale=time_scale, seed=seed, draw_prompt=False)
    async with MockNovita(config) as mock:
        client = NovitaClient(Secret(config.api_key), mock.base_url, max_submits_per_minute=0)
        watcher = WatchingClient(client)
        engine = JobEngine(
            watcher,
            JobSettings(poll_min_interval=0.5, poll_max_interval=contender.max_interval),
            durations,
            planner=contender.planner,
            clock=lambda: time.monotonic() / time_scale,
            sleep=lambda seconds: asyncio.sleep(seconds * time_scale),
            rng=random.Random(seed),
        )
        slots = asyncio.Semaphore(concurrency)  # FIFO: jobs start (and submit) in order
        records: list[JobRecord] = []
        failures = 0

        async def one(size: ImageSize) -> None:
            nonlocal failures
            async with slots:
                try:
                    result = await engine.run("a poll benchmark poster", size)
                except Exception as exc:
                    failures += 1
                    print(f"  {contender.name}: job failed: {exc!r}", file=sys.stderr)
                    return
            task = mock.tasks[result.task_id]
            delay = (watcher.noticed[result.task_id] - task.succeeded_at) / time_scale
            queued = task.processing_at > task.created_at
            records.append(JobRecord(size.wire, result.polls, delay, queued))

        try:
            await asyncio.gather(*(one(size) for size in sizes))
        finally:
            await client.close()
    return records, failures


async def run_contender(contender: Contender, args: argparse.Namespace) -> ContenderResult:
    durations = DurationModel()
    if args.warmup and isinstance(contender.planner, AdaptivePlanner):
        await run_jobs(contender, workload(args.warmup, args.seed + 1000),
                       time_scale=args.time_scale, seed=args.seed + 1000,
                       concurrency=args.concurrency, durations=durations)
    records, failures = await run_jobs(
        contender, workload(args.jobs, args.seed), time_scale=args.time_scale, seed=args.seed,
        concurrency=args.concurrency, durations=durations,
    )
    delays = [r.detection_delay for r in records]
    return ContenderResult(
        name=contender.name,
        description=contender.description,
        jobs=len(records),
        failures=failures,
        polls_per_job=statistics.fmean(r.polls for r in records) if records else float("nan"),
        polls_relative=float("nan"),
        delay_p50=percentile(delays, 0.5),
        delay_p90=percentile(delays, 0.9),
        delay_p99=percentile(delays, 0.99),
        delay_mean=statistics.fmean(delays) if delays else float("nan"),
        records=records,
    )


def check_targets(results: dict[str, ContenderResult]) -> dict[str, dict[str, bool]]:
    """The goals: p50 ≤ 0.5 s at ≤ 0.3× the 0.5 s poller's polls; beat backoff on both."""
    backoff = results["backoff 2 s ×1.3 ≤ 5 s"]
    checks: dict[str, dict[str, bool]] = {}
    for name, result in results.items():
        if not name.startswith("adaptive"):
            continue
        checks[name] = {
            "p50_at_most_0.5s": result.delay_p50 <= 0.5,
            "polls_at_most_0.3x_fixed_0.5s": result.polls_relative <= 0.3,
            "fewer_polls_than_backoff": result.polls_per_job < backoff.polls_per_job,
            "lower_p50_than_backoff": result.delay_p50 < backoff.delay_p50,
        }
    return checks


def render_table(results: Sequence[ContenderResult]) -> str:
    header = (f"{'poller':<24} {'polls/job':>9} {'vs 0.5 s':>8} {'p50 s':>6} {'p90 s':>6} "
              f"{'p99 s':>6} {'jobs':>5}")
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.name:<24} {r.polls_per_job:>9.2f} {r.polls_relative:>7.2f}× {r.delay_p50:>6.2f} "
            f"{r.delay_p90:>6.2f} {r.delay_p99:>6.2f} {r.jobs:>5}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.poll_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=None, help="jobs per poller (default 120)")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="real seconds per simulated second (default 0.1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8, help="jobs in flight per poller")
    parser.add_argument("--warmup", type=int, default=0,
                        help="jobs the adaptive pollers learn from before measuring (default 0)")
    parser.add_argument("--quick", action="store_true", help="a ~15 s smoke run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = 24 if args.quick else 120
    if args.time_scale is None:
        args.time_scale = 0.05 if args.quick else 0.1
    if args.jobs < 1 or args.time_scale <= 0 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--jobs and --concurrency must be ≥ 1, --time-scale > 0, --warmup ≥ 0")
    return args


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    ran = await asyncio.gather(*(run_contender(c, args) for c in CONTENDERS))
    results = {r.name: r for r in ran}
    base = results[BASELINE].polls_per_job
    for r in ran:
        r.polls_relative = r.polls_per_job / base
    wall = time.monotonic() - started
    print(render_table(ran))
    targets = check_targets(results)
    for name, checks in targets.items():
        verdict = ", ".join(f"{goal} {'yes' if ok else 'NO'}" for goal, ok in checks.items())
        print(f"{name}: {verdict}")
    print(f"({args.jobs} jobs per poller, time scale {args.time_scale}, seed {args.seed}, "
          f"warm-up {args.warmup}, {wall:.1f} s wall)")
    return {
        "config": {
            "jobs": args.jobs, "time_scale": args.time_scale, "seed": args.seed,
            "concurrency": args.concurrency, "warmup": args.warmup,
            "workload": "mock Novita defaults: ~12/20/30 s at 512²/1024²/1536², 15 % gaussian "
                        "spread, 10 % of tasks queued 2-8 s; sizes mixed uniformly",
            "learning": "adaptive pollers start from the prior and learn online from each job",
            "wall_seconds": round(wall, 2),
        },
        "units": "seconds, unscaled (real-world)",
        "pollers": [
            {k: v for k, v in asdict(r).items() if k != "records"} for r in ran
        ],
        "targets": targets,
        "jobs": {r.name: [asdict(rec) for rec in r.records] for r in ran},
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(bench(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
