"""`python -m bench.load.bot_process --stats FILE`: the real bot, plus measurements from inside.

It runs the bot's own entry point (`bot.terminal.cli.main(["run"])`, settings from the
environment) and
additionally, inside the same process:

* samples event-loop lag: a task sleeps 50 ms and records how much longer it took to wake;
* reads peak RSS (`ru_maxrss`) when the bot has stopped (SIGTERM stops it cleanly);

and writes both to `--stats` as JSON on exit. With `--time-scale S` it first seeds the fresh
database's learned durations with the prior scaled by S (the bot's own `DurationModel` format),
so the adaptive planner expects jobs as long as the time-scaled mock makes them. `--profile FILE`
runs the whole process under pyinstrument and writes a text report there.
Nothing here is part of the bot: it only wraps the unchanged entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import time
from pathlib import Path
from typing import Any, Final

from bot.config import load_settings
from bot.imaging import ImageSize
from bot.jobs.polling.durations import DurationModel, prior_generation_seconds
from bot.jobs.polling.keeper import DURATIONS_KEY
from bot.storage.database import Database
from bot.storage.repository_set import Repositories
from bot.terminal.cli import main as bot_main

LAG_PERIOD: Final = 0.05

_lag_samples: list[tuple[float, float]] = []  # (monotonic time of the wake-up, lag seconds)


async def _sample_lag() -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(LAG_PERIOD)
        woke = time.monotonic()
        _lag_samples.append((woke, max(0.0, woke - before - LAG_PERIOD)))


class _LagSampledPolicy(asyncio.DefaultEventLoopPolicy):
    """Every new event loop (discord.py's `asyncio.run`) starts the lag sampler first."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.call_soon(lambda: loop.create_task(_sample_lag(), name="bench-loop-lag"))
        return loop


SEED_SIZES = (ImageSize(512, 512), ImageSize(1024, 1024), ImageSize(1536, 1536))


def scaled_durations(time_scale: float) -> dict[str, Any]:
    """A warm duration model (a dozen jobs per size around the prior, ± 15 %) in time-scaled
    seconds, as a bot that has run for a while at the mock's pace would have learned."""
    model = DurationModel()
    rng = random.Random(0)
    for size in SEED_SIZES:
        for _ in range(12):
            spread = max(0.5, rng.gauss(1.0, 0.15))
            model.observe(size, prior_generation_seconds(size) * time_scale * spread)
    return model.to_dict()


async def seed_durations(database_url: str, time_scale: float) -> None:
    database = await Database.connect(database_url)
    try:
        durations = Repositories.over(database).durations
        await durations.save(DURATIONS_KEY, scaled_durations(time_scale))
    finally:
        await database.close()


def _write_stats(path: Path, exit_code: int, started: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {
        "pid": os.getpid(),
        "exit_code": exit_code,
        "started_at": started,
        "stopped_at": time.monotonic(),
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # kilobytes on Linux
        "cpu_user_seconds": usage.ru_utime,
        "cpu_system_seconds": usage.ru_stime,
        "lag_period_seconds": LAG_PERIOD,
        "lag_samples": [[round(at, 6), round(lag, 6)] for at, lag in _lag_samples],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.bot_process")
    parser.add_argument("--stats", type=Path, required=True, help="JSON file written on exit")
    parser.add_argument("--time-scale", type=float, default=None)
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument text report")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.time_scale is not None:
        database_url = load_settings(env_file=None).database_url.reveal()
        asyncio.run(seed_durations(database_url, args.time_scale))
    asyncio.set_event_loop_policy(_LagSampledPolicy())
    profiler: Any = None
    if args.profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01, async_mode="disabled")  # coarse: cheap enough
        profiler.start()
    exit_code = 1
    try:
        exit_code = bot_main(["run"])
    finally:
        if profiler is not None:
            profiler.stop()
            args.profile.write_text(profiler.output_text(unicode=True, show_all=False))
            args.profile.with_suffix(".html").write_text(profiler.output_html())
        _write_stats(args.stats, exit_code, started)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
