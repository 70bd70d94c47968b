"""Shared by the Novita client's tests: one manual clock, and the mock Novita on it.

`fake_time` is the `fakes.clock.ManualClock` a client is given as `clock` and `sleep`: its
sleeps return at once and are recorded in `fake_time.sleeps`. `make_mock_novita(**config)`
starts a `MockNovita` on that same clock (keywords are `MockNovitaConfig`), so a retry's wait or
a task's progress is one `fake_time.advance(...)` away; it stops when the test ends.
`WIRE_STATUSES` is the one table of what each wire status reads as, for the model's tests and the
client's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.novita.models import TaskStatus
from fakes.clock import ManualClock
from fakes.novita.server import MockNovita, MockNovitaConfig

MockNovitaFactory = Callable[..., Awaitable[MockNovita]]

# (wire status, what it reads as, whether that ends the task)
WIRE_STATUSES = [
    ("TASK_STATUS_QUEUED", TaskStatus.QUEUED, False),
    ("TASK_STATUS_PROCESSING", TaskStatus.PROCESSING, False),
    ("TASK_STATUS_SUCCEED", TaskStatus.SUCCEED, True),
    ("TASK_STATUS_FAILED", TaskStatus.FAILED, True),
    ("TASK_STATUS_UNKNOWN", TaskStatus.UNKNOWN, False),
    ("TASK_STATUS_CANCELED", TaskStatus.UNKNOWN, False),
    ("TASK_STATUS_SUCCEEDED", TaskStatus.UNKNOWN, False),  # the spelling Novita does NOT use
    ("", TaskStatus.UNKNOWN, False),
]


@pytest.fixture
def fake_time() -> ManualClock:
    return ManualClock(start=1000.0)


@pytest.fixture
async def make_mock_novita(fake_time: ManualClock) -> AsyncIterator[MockNovitaFactory]:
    async with contextlib.AsyncExitStack() as running:

        async def make(**config: Any) -> MockNovita:
            config.setdefault("clock", fake_time)
            return await running.enter_async_context(MockNovita(MockNovitaConfig(**config)))

        yield make
