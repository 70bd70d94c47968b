"""The whole-bot load benchmark's harness: three members through the real bot process.

Behaviour only (the JSON's shape, every member acknowledged, nothing lost), never timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stacks import DiscordSpecWatch

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

RECORD_KEYS = {
    "name", "mode", "n", "poller", "time_scale", "cpu_count", "sent", "acknowledged",
    "ack_p50_s", "ack_p99_s", "admitted", "admissions_per_s", "refusals", "busy", "delivered",
    "failed", "lost", "detection_p50_s", "detection_p99_s", "overhead_p50_ms", "overhead_p99_ms",
    "polls_per_job", "rest_calls_per_job", "rate_limited_429", "spec_violations",
    "spec_violations_first", "peak_rss_mb", "loop_lag_p99_ms",
}


def test_python_m_bench_runs_three_members_end_to_end_and_loses_none(
    tmp_path: Path, discord_spec: DiscordSpecWatch
) -> None:
    out = tmp_path / "load.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--n", "3", "--pollers", "adaptive",
         "--steady-seconds", "0", "--time-scale", "0.02", "--real-time-at", "",
         "--json", str(out),
         "--workdir", str(tmp_path / "work")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=170, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(out.read_text())
    assert result["machine"]["cpu_count"] == os.cpu_count()
    [run] = result["runs"]
    assert run.keys() >= RECORD_KEYS
    # The fake Discord ran in its own process: its report is the spec check's only view of it.
    discord_spec.reported(
        f"python -m bench run {run['name']}", run["spec_violations"], run["spec_violations_first"]
    )
    assert run["spec_violations"] == 0, run["spec_violations_first"]
    assert (run["n"], run["poller"], run["mode"]) == (3, "adaptive", "burst")
    assert run["time_scale"] == 0.02
    assert run["sent"] == run["acknowledged"] == run["admitted"] == run["delivered"] == 3
    assert run["lost"] == 0 and run["busy"] == 0 and run["refusals"] == {}
    assert run["polls_per_job"] >= 1 and run["rest_calls_per_job"] >= 2
    assert run["attachment_bytes_mean"] >= 300_000  # realistic JPEG sizes reached Discord
    assert run["peak_rss_mb"] > 0 and run["loop_lag_p99_ms"] is not None
    assert "| burst 3 · adaptive · ×0.02 |" in completed.stdout
    assert "| spec violations |" in completed.stdout


def test_the_quick_plan_runs_the_large_bursts_again_at_real_speed() -> None:
    from bench.__main__ import parser, plan

    specs = plan(parser().parse_args(["--quick", "--steady-seconds", "10"]))
    scaled = [(s.n, s.poller.label, s.mode) for s in specs if s.time_scale == 0.1]
    real = [(s.n, s.poller.label, s.mode) for s in specs if s.time_scale == 1.0]
    assert real == [(200, "adaptive", "burst"), (1000, "adaptive", "burst")]
    assert len({spec.name for spec in specs}) == len(specs)  # each run its own directory
    assert (1000, "adaptive", "burst") in scaled and (50, "cli-3s", "burst") in scaled
    assert (200, "adaptive", "steady") in scaled
    full = plan(parser().parse_args(["--n", "1,50", "--steady-seconds", "60"]))
    assert {s.time_scale for s in full} == {1.0} and len(full) == 2 * 4 + 4  # + steady runs
