"""Shared by the Novita client's tests: one manual clock, and the mock Novita on it.

`fake_time` is the `fakes.clock.ManualClock` a client is given as `clock` and `sleep`: its
sleeps return at once and are recorded in `fake_time.sleeps`. `make_mock_novita(**config)`
starts a `MockNovita` on that same clock (keywords are `MockNovitaConfig`), so a retry's wait or
a task's progress is one `fake_time.advance(...)` away; it stops when the test ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from fakes.clock import ManualClock
from fakes.novita.server import MockNovita, MockNovitaConfig

MockNovitaFactory = Callable[..., Awaitable[MockNovita]]


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
