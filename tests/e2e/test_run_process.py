"""The real entry point: `python -m bot` as a process, against the fake Discord and mock Novita."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from bot.app.session_budget import EXIT_SESSION_BUDGET_LOW
from bot.storage.database import Database
from bot.storage.repositories.ledger import UsageLedger
from fakes.discord.state import FakeDiscordConfig
from fakes.novita.server import MockNovita, MockNovitaConfig
from tests.e2e.crash_support import process_env
from tests.e2e.stacks import FakeDiscordFactory

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_python_m_bot_serves_imagine_and_stops_cleanly_on_sigterm(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory
) -> None:
    async with MockNovita(MockNovitaConfig(time_scale=0.02)) as mock, make_fake_discord() as fake:
        guild = fake.add_guild("Art Club")
        channel = fake.add_channel(guild, "art")
        alice = fake.add_member(guild, "alice")
        env = process_env(
            fake, mock, f"sqlite+aiosqlite:///{tmp_path / 'data' / 'imagine.db'}",
            POLL_MIN_INTERVAL_SECONDS="0.05",
            POLL_MAX_INTERVAL_SECONDS="0.2",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            # First start: the command tree is new, so it is synced once.
            await fake.wait_for(lambda: fake.global_commands or None, timeout=60)
            await fake.wait_for_bot(1)
            interaction = await fake.invoke_slash(
                channel, alice, "imagine", {"prompt": "a poster that says HELLO", "size": "512*512"}
            )
            message = await interaction.wait_original(lambda m: bool(m.attachments), timeout=60)
            assert message.attachments[0].filename.endswith(".jpeg")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        log = output.decode()
        assert process.returncode == 0, log
        assert "job finish" in log and "outcome=succeeded" in log
        assert fake.bot_token not in log and mock.config.api_key not in log  # no secrets logged
        assert "Traceback" not in log and "Unclosed" not in log
        # The session-start budget was read first, logged, and one IDENTIFY spent of it.
        assert "Discord session starts: 1000 of 1000 left today, this start uses 1" in log
        assert fake.state.identifies == 1

        # The ledger row was closed as succeeded, even though SIGTERM came right after delivery.
        database = await Database.connect(env["DATABASE_URL"])
        try:
            page = await UsageLedger(database).history(guild.id)
        finally:
            await database.close()
        assert [str(entry.status) for entry in page.entries] == ["succeeded"], log
        assert page.entries[0].task_id is not None


async def test_a_low_session_start_budget_refuses_to_log_in_with_one_line(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory
) -> None:
    """A crash-looping bot stops before the IDENTIFY that would cost its token."""
    config = FakeDiscordConfig(session_starts_remaining=20, session_start_reset_after=2 * 3600)
    async with MockNovita(MockNovitaConfig(time_scale=0.02)) as mock, make_fake_discord(
        config
    ) as fake:
        guild = fake.add_guild("Art Club")
        fake.add_channel(guild, "art")
        env = process_env(fake, mock, f"sqlite+aiosqlite:///{tmp_path / 'imagine.db'}")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == EXIT_SESSION_BUDGET_LOW, stdout.decode() + stderr.decode()
    (line,) = [text for text in stderr.decode().splitlines() if "Not logging in" in text]
    assert "20 of its 1000 daily session starts are left" in line
    assert "this start needs 1 (plus DISCORD_MIN_SESSION_STARTS=20 kept in reserve)" in line
    assert "resets in 2 h" in line and "exit code 75: do not restart now" in line
    assert "Traceback" not in stdout.decode() + stderr.decode()
    # Asked, then stopped: no gateway connection, no IDENTIFY, nothing spent.
    assert fake.calls_to("GET", "/gateway/bot")
    assert fake.state.identifies == 0 and not fake.gateway.connections
    assert fake.state.session_starts_left == 20 and fake.state.token_resets == 0


async def test_lowering_the_reserve_lets_the_same_budget_log_in(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory
) -> None:
    """DISCORD_MIN_SESSION_STARTS=0 is the operator's way past the margin (never past zero)."""
    config = FakeDiscordConfig(session_starts_remaining=1)
    async with MockNovita(MockNovitaConfig(time_scale=0.02)) as mock, make_fake_discord(
        config
    ) as fake:
        fake.add_channel(fake.add_guild("Art Club"), "art")
        env = process_env(fake, mock, f"sqlite+aiosqlite:///{tmp_path / 'imagine.db'}",
                          DISCORD_MIN_SESSION_STARTS="0")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await fake.wait_for_bot(1, timeout=60)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    log = output.decode()
    assert process.returncode == 0, log
    assert "Discord session starts: 1 of 1000 left today, this start uses 1" in log
    assert fake.state.identifies == 1 and fake.state.token_resets == 0
