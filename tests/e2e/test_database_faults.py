"""PostgreSQL cut and stalled mid-run, through a TCP proxy (`fakes.db_proxy`).

The bot runs in-process (LocalStack) on a fresh PostgreSQL database reached only through the
proxy. Jobs that end while the database is away are still delivered; their end is recorded once
it is back (the outbox), so the ledger and quotas end exact. Commands answer inside Discord's
window with "the bot's database is unavailable", and the log gets one line per outage.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.storage.database import Database
from bot.storage.repositories.journal import JobJournal
from bot.storage.repositories.ledger import UsageLedger
from bot.wording.messages import DATABASE_UNAVAILABLE
from fakes.db_proxy import TcpProxy
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


async def _quota_reply(stack: LocalStack) -> str:
    """/imagine-quota's answer, once it is acknowledged (the fake refuses one after 3 s)."""
    interaction = await stack.fake.invoke_slash(stack.channel, stack.bob, "imagine-quota", {})
    await interaction.wait_acknowledged(timeout=3.0)
    await stack.fake.wait_for(
        lambda: (
            (m := interaction.original_message()) is not None and not m.loading
            and (m.content or m.embeds)
        ) or None,
        timeout=20,
    )
    message = interaction.original_message()
    assert message is not None and message.ephemeral
    return message.content


async def test_database_cut_and_stalled_mid_run_nothing_stuck_quotas_exact(
    proxied_postgres: tuple[TcpProxy, str], caplog: pytest.LogCaptureFixture,
    make_stack: StackFactory,
) -> None:
    proxy, url = proxied_postgres
    caplog.set_level(logging.INFO)
    async with make_stack(
        time_scale=1.0, fixed_duration=1.5, database_url=url,
        settings={"database_command_timeout": 2.0, "database_connect_timeout": 1.0},
    ) as stack:
        jobs = [await stack.imagine(stack.alice, f"poster {i}", "512*512") for i in range(2)]
        await stack.fake.wait_for(lambda: stack.mock.stats.submits >= 2 or None, timeout=10)
        await asyncio.sleep(0.3)  # let "submitted" land before the cut
        proxy.cut()  # the jobs end while the database is away
        for job in jobs:
            final = await stack.wait_result(job)
            assert final.attachments  # delivered regardless
        assert await _quota_reply(stack) == DATABASE_UNAVAILABLE

        proxy.restore()
        outbox = stack.bot.generation.outbox
        await asyncio.wait_for(stack.bot.generation.jobs.wait_idle(), 20)
        assert await outbox.flush(20) == 0

        # A stall (the server stops answering): acknowledged in time, then answered clearly.
        proxy.stall()
        assert await _quota_reply(stack) == DATABASE_UNAVAILABLE
        proxy.restore()
        assert await _quota_reply(stack) != DATABASE_UNAVAILABLE

    outage_lines = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert 1 <= len(outage_lines) <= 2, [r.getMessage() for r in outage_lines]  # per outage
    assert "Traceback" not in caplog.text

    database = await Database.connect(url)
    try:
        page = await UsageLedger(database).history(stack.guild.id)
        assert [str(e.status) for e in page.entries] == ["succeeded", "succeeded"]
        assert await JobJournal(database, UsageLedger(database)).entries() == []
    finally:
        await database.close()
