"""End to end: the Cancel, Re-roll and Delete buttons, also on messages from before a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.interactions.display import DiscordJobDisplay
from bot.jobs.model import JobStage
from bot.wording import presentation as ui
from fakes.discord.server import FakeInteraction, FakeMember, FakeMessage
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import (
    assert_pings_nobody,
    button_labels,
    description,
    field_values,
    jpeg_size,
    private_refusal,
    title,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

NEVER_FINISH = "[mock:never-finish]"


async def finished_job(
    stack: LocalStack,
    member: FakeMember,
    prompt: str = "a lighthouse at dusk",
    size: str = "768*512",
) -> FakeMessage:
    message = await stack.wait_result(await stack.imagine(member, prompt, size))
    assert title(message) == ui.RESULT_TITLE
    return message


async def running_job(stack: LocalStack, member: FakeMember) -> tuple[FakeInteraction, FakeMessage]:
    """A job that stays at Novita until cancelled, once its message shows Cancel."""
    interaction = await stack.imagine(member, f"an endless staircase {NEVER_FINISH}", "512*512")
    message = await interaction.wait_original(lambda m: "Cancel" in button_labels(m))
    await stack.fake.wait_for(lambda: stack.mock.stats.polls >= 1 or None)
    return interaction, message


async def ephemeral_reply(click: FakeInteraction) -> str:
    assert await click.wait_acknowledged() == 4
    assert click.ephemeral
    reply = click.original_message()
    assert reply is not None and reply.ephemeral
    return reply.content


async def test_reroll_by_another_member_makes_a_new_image_with_the_same_prompt_and_size(
    stack: LocalStack,
) -> None:
    original = await finished_job(stack, stack.alice, "a lighthouse at dusk", "768*512")
    click = await stack.click(original, "Re-roll", stack.bob)
    assert await click.wait_acknowledged() == 5  # a new public "thinking…" message
    assert not click.ephemeral
    rerolled = await stack.wait_result(click)

    assert rerolled.id != original.id
    assert title(rerolled) == ui.RESULT_TITLE
    first, second = stack.mock.tasks.values()
    assert (second.prompt, second.width, second.height) == (first.prompt, 768, 512)
    assert jpeg_size(rerolled.attachments[0].data) == (768, 512)
    assert rerolled.attachments[0].filename == f"{second.task_id}.jpeg"
    assert field_values(rerolled)["Requested by"] == f"<@{stack.bob.id}>"  # bob asked this time
    assert description(rerolled) == description(original)
    assert not original.deleted and title(original) == ui.RESULT_TITLE  # untouched
    assert_pings_nobody(stack.fake)


async def test_delete_by_someone_else_is_refused_and_the_message_stays(stack: LocalStack) -> None:
    message = await finished_job(stack, stack.alice)
    reply = await ephemeral_reply(await stack.click(message, "Delete", stack.bob))
    assert reply == "Only the person who asked, or a moderator, can delete this."
    assert not message.deleted
    assert not stack.fake.calls_to(
        "DELETE", "/webhooks/{application_id}/{token}/messages/@original"
    )


@pytest.mark.parametrize("who", ["alice", "mod"])
async def test_delete_by_the_requester_or_a_moderator_removes_the_message(
    stack: LocalStack, who: str
) -> None:
    message = await finished_job(stack, stack.alice)
    click = await stack.click(message, "Delete", getattr(stack, who))
    assert await click.wait_acknowledged() == 6  # deferred update: nothing new is posted
    await stack.fake.wait_for(lambda: message.deleted or None)
    assert not click.followups()


async def test_cancel_by_someone_else_is_refused(stack: LocalStack) -> None:
    _, message = await running_job(stack, stack.alice)
    reply = await ephemeral_reply(await stack.click(message, "Cancel", stack.bob))
    assert reply == "Only the person who asked, or a moderator, can cancel this."
    assert len(stack.bot.generation.jobs) == 1  # still running
    assert "Cancel" in button_labels(message)


@pytest.mark.parametrize("who", ["alice", "mod"])
async def test_cancel_by_the_requester_or_a_moderator_stops_polling(
    stack: LocalStack, who: str
) -> None:
    interaction, message = await running_job(stack, stack.alice)
    click = await stack.click(message, "Cancel", getattr(stack, who))
    assert await click.wait_acknowledged() == 6
    final = await stack.wait_result(interaction)
    assert title(final) == ui.CANCELLED_TITLE
    name = "alice" if who == "alice" else "mod"
    assert description(final).startswith(f"Cancelled by {name}.")
    assert button_labels(final) == [] and not final.attachments and not final.loading

    await stack.bot.generation.jobs.wait_idle()
    assert not stack.bot.generation.jobs
    polls = stack.mock.stats.polls
    # Proving that nothing more happens needs some time to pass: five of the longest poll gaps.
    await asyncio.sleep(stack.settings.poll_max_interval * 5)
    assert stack.mock.stats.polls == polls
    assert stack.mock.stats.downloads == 0


async def test_a_restart_tells_members_their_image_will_follow_and_delivers_it(
    stack: LocalStack,
) -> None:
    interaction, _ = await running_job(stack, stack.alice)
    await stack.bot.close()
    message = interaction.original_message()
    assert message is not None
    assert title(message) == ui.RESTARTING_TITLE
    assert ui.RESTARTING_TEXT in description(message)
    assert button_labels(message) == []  # no Cancel while nobody runs the job
    submits = stack.mock.stats.submits

    polls = stack.mock.stats.polls
    await stack.start_bot()  # takes the journaled job back: polls the same task again
    resumed = await interaction.wait_original(lambda m: "Cancel" in button_labels(m))
    await stack.fake.wait_for(lambda: stack.mock.stats.polls > polls or None)
    assert stack.mock.stats.submits == submits  # never submitted twice
    # The job taken back answers its Cancel button like any other.
    click = await stack.click(resumed, "Cancel", stack.alice)
    assert await click.wait_acknowledged() == 6
    final = await stack.wait_result(interaction)
    assert title(final) == ui.CANCELLED_TITLE
    assert_pings_nobody(stack.fake)


async def test_buttons_keep_working_after_a_restart(stack: LocalStack) -> None:
    before = await finished_job(stack, stack.alice, "a poster that says AGAIN", "512*768")
    _, running = await running_job(stack, stack.alice)
    stale_components = running.components

    await stack.restart_bot()
    await stack.bot.recovery.done.wait()
    # The job taken back after the restart (its task never finishes): cancel it from here.
    for job_id in stack.bot.recovery.taken_back:
        stack.bot.generation.jobs.cancel(job_id, "test")
    await stack.bot.generation.jobs.wait_idle()
    assert not stack.bot.generation.jobs

    # Cancel from a progress message left behind (as after a crash, when the old process
    # could not replace it): nothing to cancel any more.
    running.components = stale_components
    reply = await ephemeral_reply(await stack.click(running, "Cancel", stack.alice))
    assert reply == "This job is no longer running."

    # Re-roll: the prompt and size come from the database ledger, not from memory.
    click = await stack.click(before, "Re-roll", stack.bob)
    rerolled = await stack.wait_result(click)
    assert title(rerolled) == ui.RESULT_TITLE
    newest = list(stack.mock.tasks.values())[-1]
    assert (newest.prompt, newest.width, newest.height) == ("a poster that says AGAIN", 512, 768)

    # Delete: the owner is in the custom id.
    delete = await stack.click(before, "Delete", stack.alice)
    assert await delete.wait_acknowledged() == 6
    await stack.fake.wait_for(lambda: before.deleted or None)


async def test_reroll_of_an_unknown_job_says_so(stack: LocalStack) -> None:
    message = await finished_job(stack, stack.alice)
    reroll_id = next(cid for cid in message.custom_ids() if cid.startswith("imagine:reroll:"))
    forged = "imagine:reroll:999999"
    message.components[0]["components"][0]["custom_id"] = forged
    assert reroll_id != forged
    reply = await private_refusal(await stack.fake.click(message, forged, stack.bob))
    assert reply.content == "I no longer have the details of this image to re-roll it."
    assert len(stack.mock.tasks) == 1


async def test_a_second_cancel_click_does_not_interrupt_the_first(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    interaction, message = await running_job(stack, stack.alice)
    custom_id = next(cid for cid in message.custom_ids() if cid.startswith("imagine:cancel:"))
    cancelled = DiscordJobDisplay.cancelled
    second_clicks: list[FakeInteraction] = []

    async def cancelled_after_a_second_click(
        display: DiscordJobDisplay, by_name: str, *, counted: bool
    ) -> None:
        # The moderator clicks Cancel too, just as the job is about to say "Cancelled".
        if not second_clicks:
            second_clicks.append(await stack.fake.click(message, custom_id, stack.mod))
            await second_clicks[0].wait_acknowledged()
        await cancelled(display, by_name, counted=counted)

    monkeypatch.setattr(DiscordJobDisplay, "cancelled", cancelled_after_a_second_click)
    first = await stack.click(message, "Cancel", stack.alice)
    assert await first.wait_acknowledged() == 6
    final = await stack.wait_result(interaction)
    assert title(final) == ui.CANCELLED_TITLE
    assert description(final).startswith("Cancelled by alice.")
    assert button_labels(final) == []
    assert second_clicks[0].response_type == 6  # acknowledged quietly: it is being cancelled


async def test_cancel_while_waiting_for_a_slot_never_submits(make_stack: StackFactory) -> None:
    async with make_stack(settings={"max_concurrent_upstream_tasks": 1}) as stack:
        first, _ = await running_job(stack, stack.alice)  # holds the only upstream slot
        waiting = await stack.imagine(stack.bob, "a patient heron", "512*512")
        message = await waiting.wait_original(lambda m: "In the queue" in title(m))
        assert title(message) == ui.queue_position_title(1)
        assert "Cancel" in button_labels(message)

        click = await stack.click(message, "Cancel", stack.bob)
        assert await click.wait_acknowledged() == 6
        assert title(await stack.wait_result(waiting)) == ui.CANCELLED_TITLE
        assert stack.mock.stats.submits == 1  # only the first job ever reached Novita

        # The slot still works: cancel the first job and the next one runs.
        first_message = first.original_message()
        assert first_message is not None
        await stack.click(first_message, "Cancel", stack.alice)
        assert title(await stack.wait_result(first)) == ui.CANCELLED_TITLE
        after = await stack.imagine(stack.bob, "a quick heron", "512*512")
        assert title(await stack.wait_result(after)) == ui.RESULT_TITLE


def job_id_of(message: FakeMessage) -> int:
    """The job id carried by a message's Cancel or Re-roll button (`imagine:<verb>:<job>…`)."""
    for component in message.walk_components():
        custom_id = str(component.get("custom_id", ""))
        if custom_id.startswith(("imagine:cancel:", "imagine:reroll:")):
            return int(custom_id.split(":")[2])
    raise LookupError("no job button on this message")


async def test_a_job_that_cannot_be_taken_back_is_stopped_and_not_counted(
    stack: LocalStack,
) -> None:
    interaction, message = await running_job(stack, stack.alice)
    job_id = job_id_of(message)
    await stack.bot.close()
    # As if the process had died while a submit was on its way: it is never sent again.
    assert await stack.services.repositories.journal.update(job_id, state=JobStage.SUBMITTING)
    await stack.start_bot()
    final = await interaction.wait_original(lambda m: title(m) == ui.STOPPED_TITLE)
    assert ui.STOPPED_BY_RESTART_TEXT in description(final) and button_labels(final) == []
    await stack.bot.recovery.done.wait()
    await stack.bot.generation.jobs.wait_idle()
    entry = await stack.services.admissions.lookup(job_id)
    assert entry is not None
    assert str(entry.status) == "refunded"
    assert not entry.counted
    assert await stack.services.repositories.journal.get(job_id) is None


async def test_a_failing_button_answers_with_an_error_id_not_interaction_failed(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    message = await finished_job(stack, stack.alice)

    async def broken_lookup(job_id: int) -> Any:
        raise RuntimeError("ledger row unreadable")

    monkeypatch.setattr(stack.bot.generation.admissions, "lookup", broken_lookup)
    click = await stack.click(message, "Re-roll", stack.bob)
    text = (await private_refusal(click)).content
    assert "error id" in text and "ledger row unreadable" not in text
    error_id = text.split("`")[1]
    assert error_id in caplog.text and "ledger row unreadable" in caplog.text
