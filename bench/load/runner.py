"""One benchmark run: fresh fakes and a fresh bot process, N members, every figure measured.

Each run starts the mock Novita (`python -m bot mock-novita`), the fake Discord
(`python -m fakes.discord`) and the bot (`python -m bench.load.bot_process`, which runs the real
entry point) as separate processes with a fresh SQLite database, sends the members' `/imagine`
interactions through the fake's control API, waits until every interaction has an outcome the
member can see (or the run times out, and what is still running counts as lost), then reads the
records back from both fakes and the bot's own stats, and stops everything.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from bench.load.metrics import summarize
from bench.load.processes import Child, base_env, spawn, start_fake_discord, start_mock

# Sizes members ask for, in turn: three in four at 1024² (~340 KB), one at 1536² (~760 KB).
SIZES: Final = ("1024*1024", "1024*1024", "1536*1536", "1024*1024")
# discord.py waits up to 2 s after READY for more GUILD_CREATEs; start after that.
SETTLE_SECONDS: Final = 2.5
ACK_WINDOW: Final = 3.0
# The longest a job can take unscaled: a 30 s job at +3 spreads after an 8 s queue.
LONGEST_JOB_SECONDS: Final = 30 * 1.45 + 8


@dataclass(frozen=True)
class Poller:
    """A poller as the benchmark names it, and its `POLL_STRATEGY` at real speed."""

    label: str
    strategy: str  # with unscaled seconds; `scaled` multiplies them by the time scale

    def scaled(self, time_scale: float) -> str:
        kind, *numbers = self.strategy.split(":")
        if kind == "fixed":
            return f"fixed:{float(numbers[0]) * time_scale:.6g}"
        if kind == "backoff":
            initial, factor, cap = (float(n) for n in numbers)
            return f"backoff:{initial * time_scale:.6g}:{factor:g}:{cap * time_scale:.6g}"
        return self.strategy


POLLERS: Final = {
    "adaptive": Poller("adaptive", "adaptive"),
    "sdk-0.5s": Poller("sdk-0.5s", "fixed:0.5"),
    "cli-3s": Poller("cli-3s", "fixed:3"),
    "backoff-2s": Poller("backoff-2s", "backoff:2:1.3:5"),
}


@dataclass(frozen=True)
class RunSpec:
    n: int
    poller: Poller
    time_scale: float
    mode: str = "burst"  # or "steady"
    rate: float = 0.0  # steady: interactions per second
    seed: int = 1
    profile: Path | None = None  # pyinstrument report of the bot process

    @property
    def name(self) -> str:
        """Unique in a plan (it names the run's working directory): the quick mode runs the
        same burst time-scaled and at real speed."""
        scale = "" if self.time_scale == 1 else f"-x{self.time_scale:g}"
        return f"{self.mode}-n{self.n}-{self.poller.label}{scale}"


def bot_env(spec: RunSpec, workdir: Path, mock_url: str, discord: dict[str, Any]) -> dict[str, str]:
    """Default settings except the upstream and per-minute caps lifted, time-scaled."""
    ts = spec.time_scale
    env = base_env() | {
        "DISCORD_TOKEN": str(discord["bot_token"]),
        "DISCORD_API_BASE_URL": str(discord["rest_base"]),
        "DISCORD_GATEWAY_URL": str(discord["gateway_url"]),
        "NOVITA_API_KEY": "mock-key",
        "NOVITA_BASE_URL": mock_url,
        # The mock serves its images from this machine, which the download guard refuses.
        "TRUSTED_IMAGE_HOSTS": mock_url.removeprefix("http://").rstrip("/"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'data' / 'imagine.db'}",
        "MAX_CONCURRENT_UPSTREAM_TASKS": "0",
        "NOVITA_MAX_SUBMITS_PER_MINUTE": "0",
        "POLL_STRATEGY": spec.poller.scaled(ts),
        "POLL_MIN_INTERVAL_SECONDS": f"{max(0.01, 0.5 * ts):g}",
        "POLL_MAX_INTERVAL_SECONDS": f"{max(0.05, 10.0 * ts):g}",
        "PROGRESS_EDIT_INTERVAL_SECONDS": f"{2.0 * ts:g}",
        "PROGRESS_EDITS_PER_SECOND": f"{min(1000.0, 25.0 / ts):g}",
    }
    return env


def jobs_for(n: int, seed: int) -> list[dict[str, str]]:
    return [
        {
            "prompt": f"load bench {seed}-{k}: a lighthouse on a cliff at dusk, poster HELLO {k}",
            "size": SIZES[k % len(SIZES)],
        }
        for k in range(n)
    ]


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.json()


async def _wait_ready(session: aiohttp.ClientSession, control: str, bot: Child) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if bot.process.returncode is not None:
            raise RuntimeError(f"the bot exited at start:\n{bot.log_tail()}")
        status = await _get(session, control + "/status")
        if status["bot_connections"] >= 1 and "imagine" in status["commands"]:
            await asyncio.sleep(SETTLE_SECONDS)
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the bot did not connect:\n{bot.log_tail()}")


async def _wait_outcomes(
    session: aiohttp.ClientSession, control: str, last_sent: float, timeout: float  # noqa: ASYNC109
) -> bool:
    """Until nothing is running and nothing can still be acknowledged; False on timeout."""
    deadline = last_sent + timeout
    while time.monotonic() < deadline:
        outcomes = (await _get(session, control + "/summary"))["outcomes"]
        ack_closed = time.monotonic() > last_sent + ACK_WINDOW + 0.5
        if not outcomes.get("running") and (ack_closed or not outcomes.get("unacknowledged")):
            return True
        await asyncio.sleep(0.25)
    return False


async def run_once(spec: RunSpec, workdir: Path) -> dict[str, Any]:
    """Run `spec` in `workdir` (logs stay there); the run's JSON record."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    started = time.monotonic()
    load_at_start = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
    children: list[Child] = []
    bot: Child | None = None
    try:
        mock, mock_url = await start_mock(workdir, spec.time_scale, spec.seed)
        children.append(mock)
        fake, discord = await start_fake_discord(workdir, spec.time_scale)
        children.append(fake)
        stats_path = workdir / "bot-stats.json"
        args = [sys.executable, "-m", "bench.load.bot_process", "--stats", str(stats_path),
                "--time-scale", f"{spec.time_scale:g}"]
        if spec.profile is not None:
            args += ["--profile", str(spec.profile)]
        bot = await spawn("bot", args, workdir, bot_env(spec, workdir, mock_url, discord))
        control = str(discord["control_url"])
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await _wait_ready(session, control, bot)
            interval = 1.0 / spec.rate if spec.mode == "steady" and spec.rate > 0 else 0.0
            body = {"jobs": jobs_for(spec.n, spec.seed), "interval": interval}
            async with session.post(control + "/imagine", json=body) as response:
                response.raise_for_status()
                sent = (await response.json())["sent"]
            last_sent = max((s["sent_at"] for s in sent), default=time.monotonic())
            limit = LONGEST_JOB_SECONDS * spec.time_scale * 3 + 60
            completed = await _wait_outcomes(session, control, last_sent, limit)
            finished_at = time.monotonic()
            report = await _get(session, control + "/report")
            tasks = (await _get(session, mock_url + "/_control/tasks"))["tasks"]
        bot_exit = await bot.stop(timeout=60)
        bot_stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
        record = summarize(report, tasks, bot_stats, time_scale=spec.time_scale,
                           finished_at=finished_at)
        return {
            "name": spec.name,
            "mode": spec.mode,
            "n": spec.n,
            "rate_per_s": spec.rate if spec.mode == "steady" else None,
            "poller": spec.poller.label,
            "poll_strategy": spec.poller.strategy,
            "poll_strategy_scaled": spec.poller.scaled(spec.time_scale),
            "time_scale": spec.time_scale,
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_start": load_at_start,
            "completed_in_time": completed,
            "bot_exit_code": bot_exit,
            "wall_seconds": round(time.monotonic() - started, 1),
            **record,
        }
    finally:
        if bot is not None:
            await bot.stop(timeout=30)
        for child in reversed(children):
            await child.stop(timeout=10)
