"""Running `python -m bot` as a real process against in-process fakes, to kill and restart it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import make_url

from bot.storage.database import Database
from bot.storage.repositories.journal import JobJournal
from bot.storage.repositories.ledger import LedgerEntry, UsageLedger
from fakes.discord.server import FakeDiscord, FakeGuild, FakeInteraction, FakeMessage
from fakes.novita.server import MockNovita
from tests.db_fixtures import POSTGRES_URL, asyncpg_dsn, require_postgres

ROOT = Path(__file__).resolve().parents[2]


def process_env(
    fake: FakeDiscord, mock: MockNovita, database_url: str, **settings: str
) -> dict[str, str]:
    """The environment of `python -m bot` run as a real process against the fakes."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": fake.bot_token,
        "NOVITA_API_KEY": mock.config.api_key,
        "NOVITA_BASE_URL": mock.base_url,
        "TRUSTED_IMAGE_HOSTS": mock.base_url.removeprefix("http://"),
        "DISCORD_API_BASE_URL": fake.rest_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DATABASE_URL": database_url,
        **settings,
    }


def bot_env(fake: FakeDiscord, mock: MockNovita, database_url: str, **extra: str) -> dict[str, str]:
    env = process_env(fake, mock, database_url)
    env |= {
        "POLL_MIN_INTERVAL_SECONDS": "0.05",
        "POLL_MAX_INTERVAL_SECONDS": "0.2",
        "PROGRESS_EDIT_INTERVAL_SECONDS": "0.2",
        "JOB_OWNER_HEARTBEAT_SECONDS": "0.5",
        "USER_MAX_CONCURRENT_JOBS": "0",
        "USER_GENERATIONS_PER_WINDOW": "0",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


@dataclass
class BotProcess:
    """One `python -m bot`; its output goes to a file (read with `log`)."""

    env: dict[str, str]
    workdir: Path
    name: str = "bot"
    process: asyncio.subprocess.Process | None = None
    logs: list[Path] = field(default_factory=list)

    async def start(self) -> None:
        log_path = self.workdir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=self.workdir, env=self.env,
                stdout=out, stderr=asyncio.subprocess.STDOUT,
            )

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs)

    async def stop(self, signum: int = signal.SIGTERM, within: float = 30) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signum)
        return await asyncio.wait_for(self.process.wait(), within)

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)


async def wait_for_log(bot: BotProcess, text: str, within: float = 30) -> None:
    """The process logs to a file: look at it every 50 ms until `text` shows up."""
    deadline = asyncio.get_running_loop().time() + within
    try:
        while text not in bot.log():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError
            await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{text!r} never logged:\n{bot.log()[-4000:]}") from None


def images_for(fake: FakeDiscord, interaction: FakeInteraction) -> list[FakeMessage]:
    """Every message that carries this interaction's image: its original response, and any
    channel message posted for it (a late result)."""
    found: list[FakeMessage] = []
    original = interaction.original_message()
    if original is not None and original.attachments:
        found.append(original)
    requester = interaction.member.user.id
    for message in fake.messages.values():
        if message is original or not message.attachments:
            continue
        if message.interaction_id is None and requester in message.mentioned_user_ids:
            found.append(message)
    return found


async def ledger_rows(
    database_url: str, guild: FakeGuild, schema: str | None = None
) -> tuple[list[LedgerEntry], int]:
    database = await Database.connect(database_url, schema=schema)
    try:
        page = await UsageLedger(database).history(guild.id, limit=1000)
        journal = await JobJournal(database, UsageLedger(database)).entries()
    finally:
        await database.close()
    return page.entries, len(journal)


async def wait_until_journaled(database_url: str, guild: FakeGuild, jobs: int) -> None:
    """Jobs reach the journal moments after they start; a crash test stops the bot only then."""
    database = await Database.connect(database_url)
    try:
        for _ in range(300):
            entries = await JobJournal(database, UsageLedger(database)).entries()
            if sum(1 for entry in entries if entry.guild_id == guild.id) >= jobs:
                return
            await asyncio.sleep(0.05)
    finally:
        await database.close()
    raise AssertionError(f"fewer than {jobs} jobs of guild {guild.id} reached the journal")


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards); yields its SQLAlchemy URL."""
    await require_postgres()
    name = f"crash_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
