"""The clocks tests move by hand (fakes/clock.py): manual, gated, scaled, UTC and offset."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from fakes.clock import GatedClock, ManualClock, ManualUtcClock, OffsetClock, ScaledClock


async def test_manual_sleeps_return_at_once_and_are_recorded() -> None:
    clock = ManualClock(start=10.0)
    await clock.sleep(2.5)
    clock.advance(1.0)
    assert (clock(), clock.sleeps) == (13.5, [2.5])
    with pytest.raises(ValueError, match="negative"):
        await clock.sleep(-1.0)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1.0)


async def test_gated_sleeps_wait_for_release_then_move_time() -> None:
    clock = GatedClock()
    sleeper = asyncio.create_task(clock.sleep(3.0))
    await clock.sleeping.wait()
    assert clock.sleeps == [3.0] and clock() == 0.0 and not sleeper.done()
    clock.release()
    await sleeper
    assert clock() == 3.0


async def test_scaled_clock_reads_and_sleeps_in_unscaled_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = [5.0]
    clock = ScaledClock(0.01, base=lambda: real[0])
    assert clock() == pytest.approx(500.0)
    real[0] += 0.02
    assert clock() == pytest.approx(502.0)
    waited: list[float] = []

    async def real_sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", real_sleep)
    await clock.sleep(1.0)
    monkeypatch.undo()
    assert waited == [pytest.approx(0.01)]  # one unscaled second is 10 ms of real time
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0.0)


def test_utc_and_offset_clocks_move_when_told() -> None:
    utc = ManualUtcClock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    assert utc.advance(minutes=5) == dt.datetime(2025, 1, 1, 0, 5, tzinfo=dt.UTC)
    offset = OffsetClock(base=lambda: 100.0)
    offset.advance(900.0)
    assert offset() == 1000.0
