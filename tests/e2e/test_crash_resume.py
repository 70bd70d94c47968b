"""Jobs survive the process: SIGKILL or SIGTERM `python -m bot` mid-run, start it again.

The fakes run in the test process (they outlive the bot); the bot is a real process on a real
database. Every image must arrive exactly once, no task may be submitted twice, and the ledger
must end exact (every job closed, none left counting as in progress, the journal empty).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from bot.jobs.model import JobStatus
from bot.wording import presentation as ui
from fakes.discord.server import FakeDiscordConfig, FakeInteraction
from fakes.novita.server import MockNovita, MockNovitaConfig
from tests.e2e.crash_support import (
    BotProcess,
    bot_env,
    images_for,
    ledger_rows,
    wait_for_log,
    wait_until_journaled,
)
from tests.e2e.stacks import FakeDiscordFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

JOBS = 6
UPSTREAM_SLOTS = 2  # so some jobs wait in the fair queue (ledger `reserved`) at the kill


def _titles(interaction: FakeInteraction) -> str:
    message = interaction.original_message()
    return "" if message is None or not message.embeds else str(message.embeds[0].get("title"))


async def _run_and_interrupt(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory, how: signal.Signals, *,
    tokens_expire_while_down: bool = False,
) -> None:
    mock_config = MockNovitaConfig(time_scale=1.0, fixed_duration=3.0, queue_probability=0.0)
    fake_config = FakeDiscordConfig(edit_rate_window=0.5)
    async with MockNovita(mock_config) as mock, make_fake_discord(fake_config) as fake:
        guild = fake.add_guild("Art Club")
        channel = fake.add_channel(guild, "art")
        members = [fake.add_member(guild, f"m{i}") for i in range(JOBS)]
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'imagine.db'}"
        env = bot_env(fake, mock, database_url,
                      MAX_CONCURRENT_UPSTREAM_TASKS=str(UPSTREAM_SLOTS))
        bot = BotProcess(env, tmp_path)
        await bot.start()
        try:
            await fake.wait_for(lambda: fake.global_commands or None, timeout=60)
            await fake.wait_for_bot(1)
            interactions = [
                await fake.invoke_slash(channel, member, "imagine",
                                        {"prompt": f"poster {i}", "size": "512*512"})
                for i, member in enumerate(members)
            ]
            # Jobs in every phase: two submitted and polling, the rest queued (reserved).
            await fake.wait_for(lambda: mock.stats.submits >= UPSTREAM_SLOTS or None, timeout=30)
            await wait_for_log(bot, "task submitted")
            assert mock.stats.submits == UPSTREAM_SLOTS
            await wait_until_journaled(database_url, guild, JOBS)
            await bot.stop(how)
            if how is signal.SIGTERM:
                assert bot.process is not None and bot.process.returncode == 0, bot.log()
                # Members were told the image follows; nothing was refunded.
                assert all(_titles(i) == ui.RESTARTING_TITLE for i in interactions), [
                    _titles(i) for i in interactions]
            if tokens_expire_while_down:
                # The bot stays down past the tokens' 15 minutes (the fake's clock moves on).
                fake.clock.advance(fake.config.token_lifetime + 60)
            entries, journaled = await ledger_rows(database_url, guild)
            assert journaled == JOBS and all(
                e.status in (JobStatus.RESERVED, JobStatus.SUBMITTED) for e in entries)

            await bot.start()
            await wait_for_log(bot, "took back")

            def all_delivered() -> bool | None:
                return all(images_for(fake, i) for i in interactions) or None

            await fake.wait_for(all_delivered, timeout=60)
            await wait_for_log(bot, "job finish", within=10)
            await asyncio.sleep(0.5)  # a duplicate would show up now
            for interaction in interactions:
                delivered = images_for(fake, interaction)
                assert len(delivered) == 1, (interaction, delivered)
                if tokens_expire_while_down:  # posted in the channel, pinging only the requester
                    assert delivered[0].mentioned_user_ids == {interaction.member.user.id}
            assert mock.stats.submits == JOBS  # each task submitted exactly once
            assert await bot.stop() == 0
        finally:
            if bot.process is not None and bot.process.returncode is None:
                await bot.kill()
        log = bot.log()
        assert fake.bot_token not in log and mock.config.api_key not in log
        for interaction in interactions:
            assert interaction.token not in log  # the stored token is never logged
        assert "Traceback" not in log, log[-4000:]
        entries, journaled = await ledger_rows(database_url, guild)
        assert journaled == 0
        assert sorted(str(e.status) for e in entries) == ["succeeded"] * JOBS, log[-4000:]


async def test_sigkill_with_jobs_in_every_phase_then_restart(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory
) -> None:
    await _run_and_interrupt(tmp_path, make_fake_discord, signal.SIGKILL)


async def test_sigterm_leaves_jobs_for_the_next_start(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory
) -> None:
    await _run_and_interrupt(tmp_path, make_fake_discord, signal.SIGTERM)


async def test_after_the_token_expired_results_are_posted_in_the_channel(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory
) -> None:
    await _run_and_interrupt(
        tmp_path, make_fake_discord, signal.SIGKILL, tokens_expire_while_down=True
    )
