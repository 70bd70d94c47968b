"""End to end: what members see when Novita misbehaves, when an image is NSFW or too big.

Faults come from the mock Novita (prompt markers such as `[mock:failed]`, or `mock.faults`);
every job must end its one message with a short reason, never "thinking…".
"""

from __future__ import annotations

import logging
import re

import pytest

from bot.storage.repositories.guild_settings import NsfwPolicy
from bot.wording import presentation as ui
from bot.wording.messages import MISCONFIGURED
from fakes.discord.server import FakeMessage
from fakes.novita.server import Endpoint, Fault
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import (
    assert_pings_nobody,
    button_labels,
    description,
    field_values,
    first_channel_post,
    jpeg_size,
    title,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def assert_failed(message: FakeMessage, *, says: str) -> None:
    assert title(message) == ui.FAILURE_TITLE
    assert says in description(message), description(message)
    assert not message.attachments and not message.loading
    assert button_labels(message) == []  # no Cancel left on a finished job


async def run_job(
    stack: LocalStack, prompt: str, size: str = "512*512", **kwargs: object
) -> FakeMessage:
    interaction = await stack.imagine(stack.alice, prompt, size, **kwargs)  # type: ignore[arg-type]
    return await stack.wait_result(interaction)


async def posted_after_the_token_expired(stack: LocalStack, prompt: str) -> FakeMessage:
    """Alice's slow job, its token left to expire (15 minutes on), and the channel post that
    has to take the place of the interaction's final edit."""
    interaction = await stack.imagine(stack.alice, prompt, "512*512")
    await interaction.wait_original(lambda m: bool(m.embeds))
    stack.fake.clock.advance(stack.fake.config.token_lifetime + 1)
    return await stack.fake.wait_for(
        lambda: first_channel_post(stack.fake, stack.channel), timeout=10
    )


async def test_a_failed_task_shows_the_upstream_reason(stack: LocalStack) -> None:
    message = await run_job(stack, "a red fox [mock:failed]")
    assert_failed(
        message,
        says="The image service could not make this image: "
        "task execution failed: the inference worker ran out of memory",
    )
    stack.mock.faults.inject(Fault.FAILED, reason="GPU fell over")
    assert_failed(
        await run_job(stack, "a blue fox"),
        says="The image service could not make this image: GPU fell over",
    )
    assert stack.mock.stats.downloads == 0


async def test_server_errors_on_polls_are_retried_until_the_image_arrives(
    stack: LocalStack,
) -> None:
    message = await run_job(stack, "a sturdy bridge [mock:server-error@poll*2]")
    assert title(message) == ui.RESULT_TITLE
    assert stack.mock.faults.served[Fault.SERVER_ERROR] == 2
    (task,) = stack.mock.tasks.values()
    assert len(task.poll_times) >= 3
    assert len(message.attachments) == 1


async def test_a_rate_limited_submit_waits_for_retry_after_then_delivers(
    stack: LocalStack,
) -> None:
    # How long the retry waits is the client's, asserted on a manual clock in
    # tests/unit/novita/test_client_against_mock.py; here: the job survives the 429 whole.
    stack.mock.faults.inject(Fault.RATE_LIMIT, on=Endpoint.SUBMIT, times=1, retry_after=0.4)
    message = await run_job(stack, "a patient snail")
    assert title(message) == ui.RESULT_TITLE
    assert stack.mock.stats.submits == 2
    assert stack.mock.faults.served[Fault.RATE_LIMIT] == 1
    assert len(stack.mock.tasks) == 1  # the refused submit made no task


@pytest.mark.parametrize(
    ("marker", "says"),
    [
        ("[mock:bad-key]", MISCONFIGURED),
        ("[mock:balance]", "out of credit. Please tell a server admin"),
        ("[mock:illegal-prompt]", "refused this prompt as inappropriate"),
        ("[mock:expired-image]", "could not be fetched"),
    ],
)
async def test_permanent_upstream_errors_end_with_a_friendly_reason(
    stack: LocalStack, marker: str, says: str
) -> None:
    message = await run_job(stack, f"a harmless cat {marker}")
    assert_failed(message, says=says)
    assert "mock-key" not in str(message.embeds)  # the API key never reaches members


async def test_a_bad_key_says_misconfigured_and_tell_an_admin(stack: LocalStack) -> None:
    stack.mock.faults.inject(Fault.BAD_KEY, times=None)
    message = await run_job(stack, "anything")
    assert_failed(message, says="misconfigured")
    assert "tell a server admin" in description(message)
    assert stack.mock.stats.submits == 1  # a 403 is not retried


async def test_a_job_that_never_finishes_times_out(make_stack: StackFactory) -> None:
    async with make_stack(settings={"job_deadline": 0.5}) as stack:
        message = await run_job(stack, "an endless staircase [mock:never-finish]")
        assert_failed(message, says="took too long")


async def test_an_unexpected_error_shows_an_error_id_that_is_in_the_log(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # (Bad image bytes are a known failure now, caught when the download is decoded.)
    async def broken_fit(data: bytes, limit: int) -> tuple[bytes, bool]:
        raise RuntimeError("a bug while preparing the upload")

    monkeypatch.setattr("bot.interactions.display.fit_to_limit", broken_fit)
    with caplog.at_level(logging.ERROR, logger="bot"):
        message = await run_job(stack, "a broken mirror")
    assert title(message) == ui.FAILURE_TITLE
    match = re.search(r"error id `([0-9a-f]{8})`", description(message))
    assert match, description(message)
    logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log


async def test_nsfw_image_is_withheld_in_a_normal_channel(stack: LocalStack) -> None:
    message = await run_job(stack, "a statue [mock:nsfw]")
    assert title(message) == ui.WITHHELD_TITLE
    assert not message.attachments and "image" not in message.embeds[0]
    assert stack.fake.calls_to("PATCH", "/webhooks/{application_id}/{token}/messages/@original")
    assert all(not edit.filenames for edit in message.edits)  # the bytes never left the bot


async def test_nsfw_image_is_delivered_in_an_age_restricted_channel(stack: LocalStack) -> None:
    message = await run_job(stack, "a statue [mock:nsfw]", channel=stack.nsfw_channel)
    assert title(message) == ui.RESULT_TITLE
    (attachment,) = message.attachments
    assert jpeg_size(attachment.data) == (512, 512)
    assert message.channel_id == stack.nsfw_channel.id


async def test_an_image_over_the_upload_limit_is_recompressed_to_fit(stack: LocalStack) -> None:
    limit = 40_000
    message = await run_job(
        stack, "a detailed poster that says BIG", "1536*1536", attachment_size_limit=limit
    )
    assert title(message) == ui.RESULT_TITLE
    (task,) = stack.mock.tasks.values()
    original = await stack.mock._jpeg_for(task)
    assert len(original) > limit  # the premise: the original would not fit
    (attachment,) = message.attachments
    assert attachment.size <= limit
    width, height = jpeg_size(attachment.data)
    assert width == height and width <= 1536
    assert field_values(message)["Note"] == "Recompressed to fit this server's upload limit."
    assert_pings_nobody(stack.fake)


async def test_an_upload_limit_too_small_to_reach_fails_clearly(stack: LocalStack) -> None:
    message = await run_job(stack, "a poster", "1024*1024", attachment_size_limit=1_000)
    assert_failed(message, says="too large to upload to this server")
    assert stack.fake.rate_limited_count == 0


async def test_after_the_interaction_token_expires_the_image_is_posted_to_the_channel(
    make_stack: StackFactory,
) -> None:
    async with make_stack(fixed_duration=50.0) as stack:
        late = await posted_after_the_token_expired(stack, "a very slow sunrise")
        # One progress edit found the token dead; no more were tried after it.
        expired = [c for c in stack.fake.calls if c.status == 401]
        assert len(expired) <= 2  # at most one progress edit, then the final edit
        (task,) = stack.mock.tasks.values()
        assert late.content == f"<@{stack.alice.id}>, your image is ready."
        assert late.attachments[0].filename == f"{task.task_id}.jpeg"
        assert jpeg_size(late.attachments[0].data) == (512, 512)
        assert button_labels(late) == ["Re-roll", "Edit", "Remix", "Delete"]
        # It pings the requester, and nobody else.
        assert late.mentioned_user_ids == {stack.alice.id}
        assert not late.mention_everyone and not late.mentioned_role_ids
        assert late.allowed_mentions is not None
        assert late.allowed_mentions["parse"] == []

        # Its Delete button works like on any other result.
        delete = await stack.click(late, "Delete", stack.alice)
        assert await delete.wait_acknowledged() == 6
        await stack.fake.wait_for(lambda: late.deleted or None)


async def test_nsfw_image_is_spoilered_when_the_server_chose_spoilers(stack: LocalStack) -> None:
    await stack.services.guild_admin.set_nsfw_policy(
        stack.guild.id, stack.admin.id, NsfwPolicy.SPOILER
    )
    message = await run_job(stack, "a statue [mock:nsfw]")
    assert title(message) == ui.RESULT_TITLE
    (attachment,) = message.attachments
    assert attachment.spoiler and attachment.filename.startswith("SPOILER_")
    assert "image" not in message.embeds[0]  # a preview would defeat the spoiler


async def test_an_interaction_acknowledged_too_late_starts_no_job(
    make_stack: StackFactory,
) -> None:
    async with make_stack() as stack:
        stack.fake.config.ack_window = 0.0  # every acknowledgement arrives "after 3 s"
        interaction = await stack.imagine(stack.alice, "too late", "512*512")
        await stack.fake.wait_for_call(
            "POST", "/interactions/{interaction_id}/{token}/callback", lambda c: c.status == 404
        )
        assert interaction.original_message() is None
        assert stack.mock.stats.submits == 0
        assert not stack.bot.generation.jobs


async def test_a_failure_after_the_token_expired_is_posted_to_the_channel(
    make_stack: StackFactory,
) -> None:
    async with make_stack(fixed_duration=50.0) as stack:
        late = await posted_after_the_token_expired(stack, "a slow failure [mock:failed]")
        assert late.content == f"<@{stack.alice.id}>"
        assert late.embeds and late.embeds[0].get("title") == ui.FAILURE_TITLE
        assert late.mentioned_user_ids == {stack.alice.id}
        assert not late.mention_everyone and not late.mentioned_role_ids
