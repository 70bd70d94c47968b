"""Start, watch and stop the benchmark's processes: mock Novita, fake Discord, the bot."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
_MOCK_URL = re.compile(r"listening on (http://\S+)")


@dataclass
class Child:
    """One child process whose output goes to a log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    _log: IO[bytes]

    async def stop(self, timeout: float = 30.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM, wait, SIGKILL if it will not go; the exit code (None if killed)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
                self._log.close()
                return None
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


async def spawn(
    name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None
) -> Child:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        *args, cwd=workdir, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )
    return Child(name, process, log_path, log)


async def first_match(child: Child, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:  # noqa: ASYNC109
    """Wait until the child's log has a line matching `pattern` (it writes it once, at start)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for line in child.log_path.read_text(errors="replace").splitlines():
            match = pattern.search(line)
            if match:
                return match
        if child.process.returncode is not None or loop.time() > deadline:
            raise RuntimeError(f"{child.name} did not start:\n{child.log_tail()}")
        await asyncio.sleep(0.05)


def base_env() -> dict[str, str]:
    import os

    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def start_mock(workdir: Path, time_scale: float, seed: int) -> tuple[Child, str]:
    args = [
        sys.executable, "-m", "bot", "mock-novita", "--port", "0",
        "--time-scale", f"{time_scale:g}", "--seed", str(seed),
        "--realistic-jpegs", "--plain-images", "--control",
    ]
    child = await spawn("mock-novita", args, workdir, base_env())
    match = await first_match(child, _MOCK_URL, 30)
    return child, match.group(1)


async def start_fake_discord(workdir: Path, time_scale: float) -> tuple[Child, dict[str, Any]]:
    args = [
        sys.executable, "-m", "fakes.discord", "--port", "0", "--guilds", "1",
        "--edit-rate-window", f"{5.0 * time_scale:g}",
    ]
    child = await spawn("fake-discord", args, workdir, base_env())
    match = await first_match(child, re.compile(r"^(\{.*\"control_url\".*\})$"), 30)
    info: dict[str, Any] = json.loads(match.group(1))
    return child, info
