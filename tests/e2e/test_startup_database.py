"""`python -m bot` with a bad DATABASE_URL: one line naming the host and cause, exit 2.

Each case runs the real entry point as a subprocess, with Discord pointed at the fake, and
checks: exit code 2, exactly one line of output, no password, no traceback, and that Discord
was never contacted (the database is checked before logging in). A server that never answers
is given up on after the configured connect timeout, which the line names.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from fakes.discord.server import FakeDiscord
from tests.db_fixtures import POSTGRES_URL, require_postgres
from tests.e2e.stacks import FakeDiscordFactory

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "secretpw"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def run_bot_with(database_url: str, fake: FakeDiscord, **extra: str) -> tuple[int, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": fake.bot_token,
        "NOVITA_API_KEY": "novita-key",
        "DISCORD_API_BASE_URL": fake.rest_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DATABASE_URL": database_url,
        **extra,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=45)
    assert process.returncode is not None
    return process.returncode, output.decode()


def assert_one_clear_line(code: int, output: str, *expected: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2, output
    assert len(lines) == 1, output
    line = lines[0]
    assert PASSWORD not in output
    assert "Traceback" not in output
    assert line.startswith("imagine-bot cannot start: cannot open the database")
    for part in expected:
        assert part in line, line
    return line


@pytest.fixture
async def fake(make_fake_discord: FakeDiscordFactory) -> AsyncIterator[FakeDiscord]:
    async with make_fake_discord() as running:
        yield running
    assert running.calls == []  # never logged in: the database is checked first


async def test_closed_port(fake: FakeDiscord) -> None:
    result = await run_bot_with(f"postgresql+asyncpg://u:{PASSWORD}@127.0.0.1:1/x", fake)
    assert_one_clear_line(*result, "PostgreSQL at 127.0.0.1:1/x", "connection refused")


async def test_host_that_cannot_resolve(fake: FakeDiscord) -> None:
    result = await run_bot_with(f"postgresql+asyncpg://u:{PASSWORD}@nonexistent.invalid/x", fake)
    assert_one_clear_line(*result, "nonexistent.invalid:5432", "cannot be resolved")


async def test_server_that_never_answers_times_out(fake: FakeDiscord) -> None:
    """Accepts TCP and then says nothing: the connect timeout ends it (not asyncpg's 60 s)."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await run_bot_with(
            f"postgresql+asyncpg://u:{PASSWORD}@127.0.0.1:{port}/x", fake,
            DATABASE_CONNECT_TIMEOUT_SECONDS="1",
        )
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert_one_clear_line(*result, f"127.0.0.1:{port}", "no answer within 1 s")


@pytest.mark.postgres
async def test_unknown_role(fake: FakeDiscord) -> None:
    await require_postgres()
    url = make_url(POSTGRES_URL).set(username="no_such_role", password=PASSWORD)
    result = await run_bot_with(url.render_as_string(hide_password=False), fake)
    assert_one_clear_line(*result, "no_such_role")


async def test_unwritable_sqlite_path(fake: FakeDiscord, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = await run_bot_with(f"sqlite+aiosqlite:///{not_a_folder / 'imagine.db'}", fake)
    assert_one_clear_line(*result, f"SQLite file {not_a_folder / 'imagine.db'}")


async def test_malformed_url(fake: FakeDiscord) -> None:
    result = await run_bot_with(f"postgresql+asyncpg://u:{PASSWORD}@host:notaport/x", fake)
    assert_one_clear_line(*result, "not a valid SQLAlchemy URL")
