"""The write outbox: ordered, retried through an outage with one log line, bugs dropped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.storage.reliability.outage import OutageLog
from bot.storage.reliability.outbox import WriteOutbox


async def test_outbox_retries_in_order_through_an_outage_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    landed: list[str] = []
    failures = {"first": 3}

    def write(name: str) -> object:
        async def run() -> None:
            if failures.get(name, 0) > 0:
                failures[name] -= 1
                raise ConnectionRefusedError("database down")
            landed.append(name)
        return run

    outbox = WriteOutbox(OutageLog(), initial_backoff=0.001, max_backoff=0.002)
    first = outbox.put("first", write("first"))  # type: ignore[arg-type]
    second = outbox.put("second", write("second"))  # type: ignore[arg-type]
    assert await asyncio.wait_for(second, 2) and first.result()
    assert landed == ["first", "second"]  # in order, though the first needed retries
    outage = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outage) == 1
    assert "reachable again" in caplog.text
    assert await outbox.close() == 0


async def test_outbox_drops_a_bug_instead_of_retrying_forever() -> None:
    async def broken() -> None:
        raise ValueError("not an outage")

    outbox = WriteOutbox(initial_backoff=0.001)
    assert await asyncio.wait_for(outbox.put("broken", broken), 2) is False
    assert outbox.pending == 0
