"""The real entry point: `python -m bot` as a process, against the fake Discord and mock Novita."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from bot.storage.database import Database
from bot.storage.repositories.ledger import UsageLedger
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

        # The ledger row was closed as succeeded, even though SIGTERM came right after delivery.
        database = await Database.connect(env["DATABASE_URL"])
        try:
            page = await UsageLedger(database).history(guild.id)
        finally:
            await database.close()
        assert [str(entry.status) for entry in page.entries] == ["succeeded"], log
        assert page.entries[0].task_id is not None
