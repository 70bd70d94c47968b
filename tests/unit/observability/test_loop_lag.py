"""The loop-lag monitor on a manual clock: what it records, and that it starts once and stops."""

from __future__ import annotations

import asyncio

import pytest

from bot.observability.loop_lag import LoopLagMonitor
from fakes.clock import ManualClock


async def test_loop_lag_records_the_oversleep() -> None:
    clock = ManualClock()
    late_by = iter([0.0, 0.1, 0.5])

    async def oversleeping(seconds: float) -> None:
        await clock.sleep(seconds + next(late_by))

    seen: list[float] = []
    monitor = LoopLagMonitor(seen.append, interval=0.25, clock=clock, sleep=oversleeping)
    await monitor.run(rounds=3)
    assert seen == pytest.approx([0.0, 0.1, 0.5])
    assert clock.sleeps == pytest.approx([0.25, 0.35, 0.75])


async def test_loop_lag_monitor_starts_once_records_each_round_and_stops() -> None:
    clock = ManualClock()
    seen: list[float] = []
    monitor = LoopLagMonitor(seen.append, interval=0.25, clock=clock, sleep=clock.sleep)
    monitor.start()
    monitor.start()  # idempotent: still one measuring task
    assert [t.get_name() for t in asyncio.all_tasks()].count("loop-lag-monitor") == 1
    for _ in range(5):
        await asyncio.sleep(0)
    await monitor.stop()
    await monitor.stop()
    assert "loop-lag-monitor" not in [t.get_name() for t in asyncio.all_tasks()]
    # Each round slept the interval on the manual clock, which never oversleeps: no lag.
    assert len(seen) >= 3 and seen == [0.0] * len(seen)
    assert clock.sleeps[: len(seen)] == [0.25] * len(seen)
    recorded = len(seen)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(seen) == recorded  # stopped: nothing more is recorded
