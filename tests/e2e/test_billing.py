"""End to end: billed work counts and each image lands once (issue 16's "the spend cap is never
exceeded", "no task is submitted twice", "every image once").

A Cancel pressed while the submit is at Novita counts for the member and in spend; one pressed
before it refunds. A journal that cannot be written before a submit stops the job with a clear
message and nothing is sent (nor sent twice after a restart). A crash between posting a result
and recording its end never posts it again after the restart, nor overwrites it.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.jobs.model import JobStage, JobStatus
from bot.storage.repositories.journal import JobJournal
from bot.wording import presentation as ui
from bot.wording.messages import JOURNAL_UNAVAILABLE
from fakes.db_proxy import TcpProxy
from fakes.discord.server import FakeInteraction, FakeMember
from fakes.novita.faults import Fault
from fakes.stack import LocalStack
from tests.e2e.crash_support import images_for
from tests.e2e.stacks import StackFactory
from tests.e2e.support import button_labels, description, private_refusal, title

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

PER_WINDOW = 5
NEVER_FINISH = "[mock:never-finish]"


async def quota_text(stack: LocalStack, member: FakeMember) -> str:
    interaction = await stack.fake.invoke_slash(stack.channel, member, "imagine-quota", {})
    await interaction.wait_acknowledged()
    message = await interaction.wait_original(
        lambda m: not m.loading and bool(m.content or m.embeds))
    assert message.ephemeral
    return message.content + "".join(str(embed) for embed in message.embeds)


async def spent_today(stack: LocalStack) -> int:
    return await stack.services.repositories.ledger.spent_microusd(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))


async def cancel(stack: LocalStack, interaction: FakeInteraction, member: FakeMember) -> str:
    message = await interaction.wait_original(lambda m: "Cancel" in button_labels(m))
    click = await stack.click(message, "Cancel", member)
    assert await click.wait_acknowledged() == 6
    final = await stack.wait_result(interaction)
    assert title(final) == ui.CANCELLED_TITLE
    return description(final)


async def test_a_cancel_while_the_submit_is_at_novita_counts_for_the_member_and_in_spend(
    make_stack: StackFactory,
) -> None:
    async with make_stack(settings={"user_generations_per_window": PER_WINDOW}) as stack:
        gate = stack.mock.faults.hold_submits()
        try:
            interaction = await stack.imagine(stack.alice, "a free image, I hope", "512*512")
            await asyncio.wait_for(gate.wait_held(1), 10)
            assert len(stack.mock.tasks) == 1  # Novita created the task: it bills it
            said = await cancel(stack, interaction, stack.alice)
            assert ui.CANCELLED_COUNTS_TEXT in said  # "Already sent: this one counts."
            await stack.bot.generation.jobs.wait_idle()
            assert await stack.bot.generation.outbox.flush(10) == 0

            assert f"**{PER_WINDOW - 1}** of {PER_WINDOW} left" in await quota_text(
                stack, stack.alice)
            assert await spent_today(stack) > 0
            (entry,) = (await stack.services.repositories.ledger.history(
                stack.guild.id)).entries
            assert (entry.status, entry.counted, entry.in_spend) == (
                JobStatus.CANCELLED, True, True)
        finally:
            gate.release()


async def test_many_cancels_after_submit_cost_the_member_like_any_image(
    make_stack: StackFactory,
) -> None:
    async with make_stack(settings={"user_generations_per_window": 2}) as stack:
        gate = stack.mock.faults.hold_submits()
        try:
            for n in range(2):
                interaction = await stack.imagine(stack.alice, f"free {n}", "512*512")
                await asyncio.wait_for(gate.wait_held(n + 1), 10)
                await cancel(stack, interaction, stack.alice)
            await stack.bot.generation.jobs.wait_idle()
            third = await stack.imagine(stack.alice, "free 2", "512*512")
            refusal = await private_refusal(third)
            assert "2 images every" in refusal.content
            assert len(stack.mock.tasks) == 2
        finally:
            gate.release()


async def test_a_cancel_before_the_submit_refunds(make_stack: StackFactory) -> None:
    async with make_stack(settings={"user_generations_per_window": PER_WINDOW,
                                    "max_concurrent_upstream_tasks": 1}) as stack:
        first = await stack.imagine(stack.bob, f"holding the slot {NEVER_FINISH}", "512*512")
        await stack.fake.wait_for(lambda: stack.mock.stats.polls >= 1 or None)
        waiting = await stack.imagine(stack.alice, "a patient heron", "512*512")
        await waiting.wait_original(lambda m: "In the queue" in title(m))
        said = await cancel(stack, waiting, stack.alice)
        assert ui.CANCELLED_REFUNDED_TEXT in said
        await cancel(stack, first, stack.bob)
        await stack.bot.generation.jobs.wait_idle()
        assert await stack.bot.generation.outbox.flush(10) == 0

        assert f"**{PER_WINDOW}** of {PER_WINDOW} left" in await quota_text(stack, stack.alice)
        assert stack.mock.stats.submits == 1  # only bob's job reached Novita
        entries = (await stack.services.repositories.ledger.history(stack.guild.id)).entries
        by_user = {entry.user_id: entry for entry in entries}
        assert (by_user[stack.alice.id].status, by_user[stack.alice.id].in_spend) == (
            JobStatus.REFUNDED, False)
        assert by_user[stack.bob.id].status is JobStatus.CANCELLED  # sent: it counts


async def test_a_journal_stall_before_the_submit_stops_the_job_and_nothing_is_sent_twice(
    proxied_postgres: tuple[TcpProxy, str], make_stack: StackFactory,
) -> None:
    proxy, url = proxied_postgres
    async with make_stack(
        time_scale=1.0, fixed_duration=1.0, database_url=url,
        settings={"database_command_timeout": 2.0, "database_connect_timeout": 1.0,
                  "max_concurrent_upstream_tasks": 1},
    ) as stack:
        first = await stack.imagine(stack.bob, f"holding the slot {NEVER_FINISH}", "512*512")
        await stack.fake.wait_for(lambda: stack.mock.stats.polls >= 1 or None, timeout=10)
        second = await stack.imagine(stack.alice, "sent only with a journal", "512*512")
        await second.wait_original(lambda m: "In the queue" in title(m))
        proxy.stall()  # the database stops answering, just before the second job's mark
        message = first.original_message()
        assert message is not None
        await stack.click(message, "Cancel", stack.bob)  # frees the slot
        final = await stack.wait_result(second, timeout=30)
        assert JOURNAL_UNAVAILABLE in description(final)
        assert stack.mock.stats.submits == 1  # never sent blind

        proxy.restore()
        await asyncio.wait_for(stack.bot.generation.jobs.wait_idle(), 20)
        assert await stack.bot.generation.outbox.flush(20) == 0
        await stack.restart_bot()
        await stack.bot.recovery.done.wait()
        await stack.bot.generation.jobs.wait_idle()
        assert stack.mock.stats.submits == 1  # and not sent after the restart either
        assert len(stack.mock.tasks) == 1
        entries = (await stack.services.repositories.ledger.history(stack.guild.id)).entries
        by_user = {entry.user_id: entry for entry in entries}
        assert (by_user[stack.alice.id].status, by_user[stack.alice.id].in_spend) == (
            JobStatus.REFUNDED, False)
        assert await JobJournal(stack.services.database,
                                stack.services.repositories.ledger).entries() == []


async def test_a_crash_between_post_and_settle_never_posts_again_nor_overwrites(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the result is posted and its "delivered" mark written, before
    its end is recorded (the settle never lands); by the restart the image URL has expired."""
    journal = stack.services.repositories.journal
    settle = journal.settle
    crashed = asyncio.Event()

    async def dies_before_settling(job_id: int, *args: object, **kwargs: object) -> bool:
        crashed.set()
        await asyncio.Event().wait()  # the process is gone: this write never lands
        raise AssertionError("unreachable")

    monkeypatch.setattr(journal, "settle", dies_before_settling)
    interaction = await stack.imagine(stack.alice, "a lighthouse at dusk", "512*512")
    delivered = await stack.wait_result(interaction)
    assert title(delivered) == ui.RESULT_TITLE and delivered.attachments
    await asyncio.wait_for(crashed.wait(), 10)
    (entry,) = await journal.entries()
    assert entry.state is JobStage.DELIVERED and entry.task_id is not None
    image = delivered.attachments[0].data
    stack.mock.faults.inject(Fault.EXPIRED_IMAGE, times=None)  # a re-poll would find it gone
    await stack.bot.close()  # gives up on the settle: the "crash" leaves the journal row
    assert [e.state for e in await journal.entries()] == [JobStage.DELIVERED]

    monkeypatch.setattr(journal, "settle", settle)
    polls = stack.mock.stats.polls
    await stack.start_bot()
    await stack.bot.recovery.done.wait()
    await stack.bot.generation.jobs.wait_idle()

    assert stack.bot.recovery.settled_delivered == [entry.job_id]
    assert stack.mock.stats.polls == polls  # never polled again
    assert len(images_for(stack.fake, interaction)) == 1  # posted exactly once
    after = interaction.original_message()
    assert after is not None and title(after) == ui.RESULT_TITLE  # untouched
    assert after.attachments[0].data == image
    row = await stack.services.repositories.ledger.get(entry.job_id)
    assert row is not None and (row.status, row.counted) == (JobStatus.SUCCEEDED, True)
    assert await journal.entries() == []
    assert stack.mock.stats.submits == 1
