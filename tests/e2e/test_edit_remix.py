"""End to end: Edit and Remix on a result, and `/imagine-edit` on a member's own upload."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from bot.interactions.components import buttons
from bot.jobs.model import JobStatus
from bot.novita.client import NovitaClient
from bot.storage.repositories.ledger import LedgerEntry
from bot.usage import usd_to_micro
from bot.wording import presentation as ui
from bot.wording.messages import DATABASE_UNAVAILABLE
from fakes.discord.players import walk_components
from fakes.discord.server import FakeInteraction, FakeMember, FakeMessage
from fakes.stack import LocalStack
from tests.e2e.support import (
    DEFERRED,
    assert_pings_nobody,
    button_labels,
    field_values,
    jpeg_size,
    private_refusal,
    title,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(60),
    pytest.mark.stack(settings={"price_per_edit_usd": 0.05, "price_per_image_usd": 0.02}),
]

MODAL = 9
MESSAGE = 4  # an immediate (here: ephemeral) answer
EDIT_PRICE, IMAGE_PRICE = usd_to_micro(0.05), usd_to_micro(0.02)


async def finished_job(
    stack: LocalStack, member: FakeMember, prompt: str = "a lighthouse at dusk",
    size: str = "768*512",
) -> FakeMessage:
    message = await stack.wait_result(await stack.imagine(member, prompt, size))
    assert title(message) == ui.RESULT_TITLE
    return message


def job_id_of(message: FakeMessage) -> int:
    """A result's job id, read from its Delete button (`imagine:delete:<job>:<owner>`)."""
    for component in message.walk_components():
        if str(component.get("custom_id", "")).startswith("imagine:delete:"):
            return int(component["custom_id"].split(":")[2])
    raise LookupError("no Delete button")


async def ledger_row(stack: LocalStack, message: FakeMessage) -> LedgerEntry:
    entry = await stack.services.admissions.lookup(job_id_of(message))
    assert entry is not None
    return entry


async def open_modal(stack: LocalStack, message: FakeMessage, label: str,
                     member: FakeMember) -> tuple[FakeInteraction, dict[str, object]]:
    """Click `label` and return the click and the modal's one text input."""
    click = await stack.click(message, label, member)
    assert await click.wait_acknowledged() == MODAL
    assert click.modal is not None
    [text_input] = [c for c in walk_components(click.modal["components"]) if c.get("type") == 4]
    return click, text_input


async def submit(stack: LocalStack, click: FakeInteraction, text_input: dict[str, object],
                 value: str) -> FakeInteraction:
    return await stack.fake.submit_modal(click, {str(text_input["custom_id"]): value})


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_edit_of_a_result_posts_a_new_edited_image_that_names_its_parent(
    stack: LocalStack,
) -> None:
    original = await finished_job(stack, stack.alice)
    click, text_input = await open_modal(stack, original, "Edit", stack.bob)
    assert text_input["label"] == "What should change?"
    assert text_input["style"] == 2  # paragraph
    assert (text_input["min_length"], text_input["max_length"]) == (1, 2000)

    submission = await submit(stack, click, text_input, "make it night time")
    assert await submission.wait_acknowledged() == DEFERRED  # public "thinking…"
    edited = await stack.wait_result(submission)

    assert edited.id != original.id and title(edited) == ui.RESULT_TITLE
    assert str(original.id) in field_values(edited)[ui.EDIT_OF]  # its parent's jump link
    assert field_values(edited)["Requested by"] == f"<@{stack.bob.id}>"
    assert button_labels(edited) == ["Re-roll", "Edit", "Remix", "Delete"]
    task = list(stack.mock.tasks.values())[-1]
    assert task.task_type == "QWEN_IMAGE_EDIT" and task.prompt == "make it night time"
    assert task.source_image == original.attachments[0].data  # the result itself was edited
    assert jpeg_size(edited.attachments[0].data) == (768, 512)
    assert stack.mock.stats.edits == 1 and stack.mock.edits.forms_seen == ["url"]
    requests = stack.bot.metrics.registry.get_sample_value(
        "imagine_upstream_requests_total", {"operation": "edit"})
    assert requests == 1  # the edit's submit is metered like a generation's

    await stack.bot.generation.jobs.wait_idle()
    row = await ledger_row(stack, edited)
    assert (row.status, row.images, row.cost_microusd) == (JobStatus.SUCCEEDED, 1, EDIT_PRICE)
    assert (row.prompt, row.size, row.user_id) == ("make it night time", "768*512", stack.bob.id)
    assert (await ledger_row(stack, original)).cost_microusd == IMAGE_PRICE
    assert_pings_nobody(stack.fake)


async def test_remix_offers_the_prompt_and_makes_a_new_image_at_the_same_size(
    stack: LocalStack,
) -> None:
    original = await finished_job(stack, stack.alice, "a lighthouse at dusk", "768*512")
    click, text_input = await open_modal(stack, original, "Remix", stack.alice)
    assert text_input["value"] == "a lighthouse at dusk"  # pre-filled with the prompt

    submission = await submit(stack, click, text_input, "a lighthouse at dawn, watercolour")
    assert await submission.wait_acknowledged() == DEFERRED
    remixed = await stack.wait_result(submission)

    assert remixed.id != original.id and title(remixed) == ui.RESULT_TITLE
    assert str(original.id) in field_values(remixed)[ui.REMIX_OF]
    first, second = stack.mock.tasks.values()
    assert second.task_type == first.task_type != "QWEN_IMAGE_EDIT"
    assert (second.prompt, second.width, second.height) == (
        "a lighthouse at dawn, watercolour", 768, 512)
    assert jpeg_size(remixed.attachments[0].data) == (768, 512)
    await stack.bot.generation.jobs.wait_idle()
    row = await ledger_row(stack, remixed)
    assert (row.status, row.cost_microusd) == (JobStatus.SUCCEEDED, IMAGE_PRICE)


async def test_remix_with_a_stalled_database_answers_in_time_and_says_why(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = await finished_job(stack, stack.alice, "a lighthouse at dusk", "768*512")
    stalled = asyncio.Event()

    async def never_answers(job_id: int) -> None:
        stalled.set()
        await asyncio.Event().wait()  # a database that stopped answering

    monkeypatch.setattr(buttons, "REMIX_LOOKUP_TIMEOUT", 0.3)
    monkeypatch.setattr(stack.bot.generation.admissions, "lookup", never_answers)
    click = await stack.click(original, "Remix", stack.bob)
    reply = await click.wait_private_reply()
    assert stalled.is_set() and click.modal is None
    assert click.acknowledged  # inside the fake's 3 s window, although the lookup stalled
    assert reply.ephemeral and reply.content == DATABASE_UNAVAILABLE
    assert len(stack.mock.tasks) == 1  # nothing new was started


async def test_imagine_edit_edits_a_good_upload(stack: LocalStack) -> None:
    upload = stack.fake.upload("cat.png", png(640, 480), "image/png", width=640, height=480)
    interaction = await stack.imagine_edit(stack.alice, upload, "give the cat a hat")
    assert await interaction.wait_acknowledged() == DEFERRED
    edited = await stack.wait_result(interaction)

    assert title(edited) == ui.RESULT_TITLE and ui.EDIT_OF not in field_values(edited)
    [task] = stack.mock.tasks.values()
    assert task.task_type == "QWEN_IMAGE_EDIT" and task.source_image == upload.data
    assert jpeg_size(edited.attachments[0].data) == (640, 480)
    assert stack.mock.edits.fetcher.fetched == [upload.payload(
        stack.fake.state.attachment_base)["url"]]
    await stack.bot.generation.jobs.wait_idle()
    row = await ledger_row(stack, edited)
    assert (row.status, row.cost_microusd, row.size) == (JobStatus.SUCCEEDED, EDIT_PRICE,
                                                         "640*480")


@pytest.mark.parametrize(
    ("filename", "content_type", "declared_size", "refusal"),
    [
        ("notes.txt", "text/plain", None, "send a PNG, JPEG or WebP image"),
        ("huge.png", "image/png", 11 * 1024 * 1024, "too large to edit (10 MB at most)"),
    ],
)
async def test_imagine_edit_refuses_a_bad_upload_before_anything_is_sent(
    stack: LocalStack, filename: str, content_type: str, declared_size: int | None,
    refusal: str,
) -> None:
    upload = stack.fake.upload(filename, b"not really" * 10, content_type,
                               declared_size=declared_size)
    interaction = await stack.imagine_edit(stack.alice, upload, "make it blue")
    assert await interaction.wait_acknowledged() == MESSAGE
    reply = interaction.original_message()
    assert interaction.ephemeral and reply is not None and refusal in reply.content
    assert stack.mock.stats.submits == 0 and interaction.public_messages() == []


async def test_imagine_edit_refuses_a_damaged_image_privately(stack: LocalStack) -> None:
    upload = stack.fake.upload("broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")
    interaction = await stack.imagine_edit(stack.alice, upload, "make it blue")
    reply = await private_refusal(interaction)
    assert "can't be edited" in reply.content or "damaged" in reply.content
    assert stack.mock.stats.submits == 0


@pytest.mark.stack(accept_image_forms=frozenset({"base64"}))
async def test_a_novita_that_reads_no_urls_gets_the_image_as_base64_after_one_refusal(
    stack: LocalStack,
) -> None:
    original = await finished_job(stack, stack.alice)
    for instruction in ("make it night time", "add snow"):
        click, text_input = await open_modal(stack, original, "Edit", stack.alice)
        edited = await stack.wait_result(await submit(stack, click, text_input, instruction))
        assert title(edited) == ui.RESULT_TITLE, field_values(edited)
    # The first edit's URL was refused and retried as a data URI; the second went straight there.
    assert stack.mock.edits.forms_seen == ["url", "base64", "base64"]
    client = stack.services.client
    assert isinstance(client, NovitaClient) and client.edits.fallbacks == 1
    assert stack.mock.edits.fetcher.fetched == []


@pytest.mark.stack(settings={"user_daily_quota": 1})
async def test_an_edit_counts_under_the_limits(stack: LocalStack) -> None:
    original = await finished_job(stack, stack.alice)  # alice's one image today
    click, text_input = await open_modal(stack, original, "Edit", stack.alice)
    reply = await private_refusal(await submit(stack, click, text_input, "make it night"))
    assert "limit" in reply.content.lower() or "today" in reply.content.lower(), reply.content
    assert stack.mock.stats.edits == 0

    # Bob has his own quota: his edit counts as his one image, so a Remix after it is refused.
    click, text_input = await open_modal(stack, original, "Edit", stack.bob)
    edited = await stack.wait_result(await submit(stack, click, text_input, "make it night"))
    assert title(edited) == ui.RESULT_TITLE
    click, text_input = await open_modal(stack, original, "Remix", stack.bob)
    await private_refusal(await submit(stack, click, text_input, "a lighthouse at noon"))
    assert stack.mock.stats.edits == 1 and stack.mock.stats.submits == 2


@pytest.mark.stack(fixed_duration=300.0)  # 3 s at the e2e time scale: long enough to restart
async def test_an_edit_running_at_a_restart_is_polled_again_and_delivered(
    stack: LocalStack,
) -> None:
    upload = stack.fake.upload("cat.png", png(640, 480), "image/png", width=640, height=480)
    interaction = await stack.imagine_edit(stack.alice, upload, "give the cat a hat")
    await stack.fake.wait_for(lambda: stack.mock.stats.polls >= 1 or None)
    await stack.bot.close()
    message = interaction.original_message()
    assert message is not None and title(message) == ui.RESTARTING_TITLE

    await stack.start_bot()  # takes the journaled edit back: polls the same task again
    edited = await stack.wait_result(interaction)
    assert title(edited) == ui.RESULT_TITLE
    assert jpeg_size(edited.attachments[0].data) == (640, 480)
    assert stack.mock.stats.edits == stack.mock.stats.submits == 1  # never submitted twice
    await stack.bot.generation.jobs.wait_idle()
    row = await ledger_row(stack, edited)
    assert (row.status, row.cost_microusd) == (JobStatus.SUCCEEDED, EDIT_PRICE)
    # Its finish taught the edit model, not the generation model.
    assert stack.services.edits.durations.seq > 0 == stack.services.engine.durations.seq


async def test_an_edit_of_a_result_taken_back_after_a_restart_still_names_its_parent(
    stack: LocalStack,
) -> None:
    original = await finished_job(stack, stack.alice)
    click, text_input = await open_modal(stack, original, "Edit", stack.bob)
    submission = await submit(stack, click, text_input, "make it night time")
    await stack.fake.wait_for(lambda: stack.mock.stats.edits >= 1 or None)
    await stack.bot.close()

    await stack.start_bot()  # the journal kept the parent's link with the job
    edited = await stack.wait_result(submission)
    assert title(edited) == ui.RESULT_TITLE
    assert str(original.id) in field_values(edited)[ui.EDIT_OF]
    assert stack.mock.stats.edits == 1  # polled again, never resubmitted
