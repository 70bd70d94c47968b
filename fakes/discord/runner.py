"""Run a real discord.py bot against the fake: log in, connect, wait for READY, close."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TypeVar

import discord

from bot.app.endpoints import configure_endpoints

if TYPE_CHECKING:
    from fakes.discord.server import FakeDiscord

ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.asynccontextmanager
async def run_bot_against(
    fake: FakeDiscord,
    bot: ClientT,
    *,
    ready_timeout: float = 10.0,
    guild_ready_timeout: float | None = 0.05,
) -> AsyncIterator[ClientT]:
    """Log `bot` into `fake`, connect, wait for READY, yield it; close it cleanly after.

    `guild_ready_timeout` shortens discord.py's wait for further GUILD_CREATEs before READY
    (2 s by default; a discord.py internal, set here to keep tests fast; None leaves it).
    A bot running several shards also waits 5 s between IDENTIFYs (its `before_identify_hook`);
    override that hook in tests that start more than one shard.
    """
    configure_endpoints(fake.rest_base, fake.gateway_url)
    if guild_ready_timeout is not None:
        bot._connection.guild_ready_timeout = guild_ready_timeout
    runner: asyncio.Task[None] | None = None
    try:
        await bot.login(fake.bot_token)
        runner = asyncio.create_task(bot.connect(reconnect=False), name="fake-discord-bot")
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait(
            {runner, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if runner in done:
                runner.result()  # re-raise why the connection ended
            raise TimeoutError(f"bot not READY within {ready_timeout}s")
        yield bot
    finally:
        await bot.close()
        if runner is not None:
            await _finish(runner)


async def _finish(runner: asyncio.Task[None]) -> None:
    """Let the connect task end after `close()`; its error was raised already or is moot."""
    done, _ = await asyncio.wait({runner}, timeout=5.0)
    if not done:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    elif not runner.cancelled():
        runner.exception()  # mark it retrieved so asyncio does not log it again
