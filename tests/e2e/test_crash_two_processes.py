"""Two bot processes on one PostgreSQL, one shard each: kill one, its jobs follow it back.

Each process resumes only the jobs of its own shard; the survivor keeps delivering its own,
and the killed one's jobs are delivered after it comes back — each image exactly once, each
task submitted once, the shared ledger exact.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.jobs.model import shard_of
from fakes.discord.server import FakeDiscord, FakeGuild
from fakes.novita.server import MockNovita, MockNovitaConfig
from tests.e2e.crash_support import (
    BotProcess,
    bot_env,
    fresh_postgres_database,
    images_for,
    ledger_rows,
    wait_for_log,
    wait_until_journaled,
)
from tests.e2e.stacks import FakeDiscordFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def _guild_on_shard(fake: FakeDiscord, shard: int) -> FakeGuild:
    for attempt in range(64):
        guild = fake.add_guild(f"Guild {shard}-{attempt}")
        if shard_of(guild.id, 2) == shard:
            return guild
    raise AssertionError("no guild id landed on that shard")


async def test_kill_one_of_two_processes_its_jobs_follow_it_back(
    tmp_path: Path, make_fake_discord: FakeDiscordFactory
) -> None:
    mock_config = MockNovitaConfig(time_scale=1.0, fixed_duration=2.0, queue_probability=0.0)
    async with (
        fresh_postgres_database() as database_url,
        MockNovita(mock_config) as mock,
        make_fake_discord() as fake,
    ):
        guilds = [_guild_on_shard(fake, 0), _guild_on_shard(fake, 1)]
        channels = [fake.add_channel(guild, "art") for guild in guilds]
        bots = []
        for shard in (0, 1):
            env = bot_env(fake, mock, database_url, SHARD_COUNT="2", SHARD_IDS=str(shard),
                          MAX_CONCURRENT_UPSTREAM_TASKS="1")
            bots.append(BotProcess(env, tmp_path, name=f"shard{shard}"))
        doomed, survivor = bots
        await doomed.start()
        await fake.wait_for_bot(1, timeout=60)
        await survivor.start()
        await fake.wait_for_bot(2, timeout=60)
        try:
            interactions = []
            for guild, channel in zip(guilds, channels, strict=True):
                for i in range(2):
                    member = fake.add_member(guild, f"m{i}")
                    interactions.append(await fake.invoke_slash(
                        channel, member, "imagine", {"prompt": f"poster {i}", "size": "512*512"}))
            doomed_jobs, survivor_jobs = interactions[:2], interactions[2:]
            await wait_for_log(doomed, "task submitted")
            await wait_until_journaled(database_url, guilds[0], len(doomed_jobs))
            await doomed.kill()  # one job polling, one queued behind it

            await fake.wait_for(
                lambda: all(images_for(fake, i) for i in survivor_jobs) or None, timeout=40)
            assert not any(images_for(fake, i) for i in doomed_jobs)

            await doomed.start()
            await wait_for_log(doomed, "took back")
            await fake.wait_for(
                lambda: all(images_for(fake, i) for i in doomed_jobs) or None, timeout=40)
            await asyncio.sleep(0.5)  # a duplicate would show up now
            assert all(len(images_for(fake, i)) == 1 for i in interactions)
            assert mock.stats.submits == len(interactions)
            assert "took back" not in survivor.log()  # it never touched the other shard's jobs
            for bot in bots:
                assert await bot.stop() == 0
        finally:
            for bot in bots:
                if bot.process is not None and bot.process.returncode is None:
                    await bot.kill()
        rows = []
        for guild in guilds:
            entries, journaled = await ledger_rows(database_url, guild)
            rows += [str(e.status) for e in entries]
        assert rows == ["succeeded"] * 4 and journaled == 0, doomed.log()[-3000:]
