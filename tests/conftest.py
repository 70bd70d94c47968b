"""Shared fixtures: database backends (SQLite always, PostgreSQL when reachable or required), and
the end-to-end stacks and fake Discords (tests/e2e, tests/bench), each checked against Discord's
OpenAPI spec when the test ends."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.e2e.stacks import DiscordSpecWatch, FakeDiscordFactory, StackFactory

pytest_plugins = ("tests.db_fixtures",)

_LOGGERS = ("bot", "cogs", "bench", "discord", "aiohttp.access")


@pytest.fixture(autouse=True)
def _restore_logger_levels() -> Iterator[None]:
    """CLI tests run `configure_logging` in-process; keep its levels from leaking to later tests."""
    saved = {name: logging.getLogger(name).level for name in _LOGGERS}
    root_level = logging.getLogger().level
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().setLevel(root_level)


@pytest.fixture
def discord_spec() -> Iterator[DiscordSpecWatch]:
    """Every fake Discord the test makes, through `make_stack` or `make_fake_discord`, and what
    one in a process of its own reported (`discord_spec.reported(...)`, e.g. `python -m bench`'s
    record); at teardown, no request the bot sent may have broken Discord's published spec."""
    watch = DiscordSpecWatch()
    yield watch
    watch.assert_none()


@pytest.fixture
def make_stack(discord_spec: DiscordSpecWatch) -> StackFactory:
    """The one way an end-to-end test builds the bot on loopback: `async with make_stack(
    fixed_duration=10.0) as stack:` (keywords are `fakes.stack.StackOptions`); restarts and
    several stacks in one test are all checked."""
    return StackFactory(discord_spec)


@pytest.fixture
def make_fake_discord(discord_spec: DiscordSpecWatch) -> FakeDiscordFactory:
    """For tests that run `python -m bot` as a process: `async with make_fake_discord() as
    fake:` (optionally with a `FakeDiscordConfig`), checked like a stack's."""
    return discord_spec.fake
