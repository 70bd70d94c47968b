"""End to end: image downloads that go wrong, through the real bot, fake Discord and mock Novita.

The mock Novita is told to hand out image URLs of a misbehaving image host (or of itself,
untrusted); every job must end with a short reason, not count against the member, and never
hold an upstream slot while its image downloads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.jobs.model import JobStatus
from bot.storage.repositories.ledger import LedgerEntry, UsageLedger
from bot.wording import presentation as ui
from fakes.discord.server import FakeMessage
from fakes.image_host import FakeImageHost
from fakes.novita.server import MockTask
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED,
         JobStatus.REFUNDED)


def title(message: FakeMessage) -> str:
    return str(message.embeds[0].get("title", "")) if message.embeds else ""


def description(message: FakeMessage) -> str:
    return str(message.embeds[0].get("description", "")) if message.embeds else ""


def point_images_at(stack: LocalStack, url_for: Callable[[str], str]) -> None:
    """Make the mock Novita answer SUCCEED with `url_for(task_id)` as the image URL."""
    original = stack.mock._result_body

    def result_body(task: MockTask, status: str, now: float, request: Any) -> dict[str, Any]:
        body = original(task, status, now, request)
        for image in body.get("images", []):
            image["image_url"] = url_for(task.task_id)
        return body

    stack.mock._result_body = result_body  # type: ignore[method-assign]


async def settled_entries(stack: LocalStack, count: int) -> list[LedgerEntry]:
    """The member's ledger rows once `count` of them have ended."""
    ledger = UsageLedger(stack.services.database)
    deadline = time.monotonic() + 10
    while True:
        page = await ledger.history(stack.guild.id, limit=50)
        ended = [e for e in page.entries if e.status in FINAL]
        if len(ended) >= count or time.monotonic() > deadline:
            return ended
        await asyncio.sleep(0.02)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def run_job(stack: LocalStack, prompt: str) -> FakeMessage:
    interaction = await stack.imagine(stack.alice, prompt, "512*512")
    return await stack.wait_result(interaction)


def assert_refunded_failure(message: FakeMessage, says: str) -> None:
    assert title(message) == ui.FAILURE_TITLE, title(message)
    assert says in description(message), description(message)
    assert not message.attachments


@pytest.fixture
async def image_host() -> AsyncIterator[FakeImageHost]:
    async with FakeImageHost() as host:
        yield host


async def test_an_image_url_on_the_bots_own_machine_is_not_fetched(
    make_stack: StackFactory,
) -> None:
    # Without TRUSTED_IMAGE_HOSTS the mock's 127.0.0.1 image URL is what an attacker would send.
    async with make_stack(trust_mock_images=False) as stack:
        message = await run_job(stack, "a lighthouse")
        assert_refunded_failure(message, "does not fetch from")
        assert stack.mock.stats.downloads == 0
        (entry,) = await settled_entries(stack, 1)
        assert entry.status is JobStatus.FAILED and not entry.counted


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("truncated.jpeg", "could not be read"),
        ("not-an-image.jpeg", "could not be read"),
        ("bomb.png", "could not be read"),
        ("redirect/4/good.jpeg", "does not fetch from"),
    ],
)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
async def test_bad_downloads_end_with_a_reason_and_do_not_count(
    image_host: FakeImageHost, path: str, says: str, make_stack: StackFactory
) -> None:
    async with make_stack(settings={"trusted_image_hosts": (image_host.host_port,)}) as stack:
        point_images_at(stack, lambda task_id: image_host.url(path))
        message = await run_job(stack, "a lighthouse")
        assert_refunded_failure(message, says)
        (entry,) = await settled_entries(stack, 1)
        assert entry.status is JobStatus.FAILED and not entry.counted


async def test_a_slow_image_host_does_not_hold_the_upstream_slot(
    image_host: FakeImageHost, make_stack: StackFactory
) -> None:
    """One upstream slot. The first job's image is held at the host; the second job must still
    be submitted, made and delivered meanwhile."""
    async with make_stack(settings={"max_concurrent_upstream_tasks": 1,
                                    "trusted_image_hosts": (image_host.host_port,)}) as stack:
        held: set[str] = set()

        def url_for(task_id: str) -> str:
            if not held:
                held.add(task_id)
            return image_host.url("hold/good.jpeg" if task_id in held else "good.jpeg")

        point_images_at(stack, url_for)
        first = await stack.imagine(stack.alice, "a slow lighthouse", "512*512")
        await until(lambda: bool(image_host.requests))  # the first job is downloading
        second = await stack.imagine(stack.bob, "a quick lighthouse", "512*512")
        second_message = await stack.wait_result(second)
        assert title(second_message) == ui.RESULT_TITLE
        assert stack.mock.stats.submits == 2
        first_message = first.original_message()
        assert first_message is not None and not first_message.attachments  # still downloading
        image_host.release()
        first_message = await stack.wait_result(first)
        assert title(first_message) == ui.RESULT_TITLE


# --- task-result replies that cannot be used -----------------------------------------------------


def rewrite_results(stack: LocalStack, rewrite: Callable[[dict[str, Any]], Any]) -> None:
    original = stack.mock._result_body

    def result_body(task: MockTask, status: str, now: float, request: Any) -> Any:
        return rewrite(original(task, status, now, request))

    stack.mock._result_body = result_body  # type: ignore[method-assign]


def cancelled(body: dict[str, Any]) -> dict[str, Any]:
    body["task"]["status"] = "TASK_STATUS_CANCELED"
    return body


@pytest.mark.parametrize(
    ("rewrite", "says"),
    [
        (cancelled, "stopped this job before it finished"),
        (lambda body: ["not", "a", "task-result"], "replies the bot could not read"),
    ],
)
async def test_unusable_task_results_end_the_job_long_before_the_deadline(
    rewrite: Callable[[dict[str, Any]], Any], says: str, make_stack: StackFactory
) -> None:
    async with make_stack(settings={"job_deadline": 30.0}) as stack:
        rewrite_results(stack, rewrite)
        message = await run_job(stack, "a lighthouse")
        # Ended by the reply itself: the 30 s deadline would read "took too long" instead.
        assert_refunded_failure(message, says)
        assert stack.mock.stats.downloads == 0
        (entry,) = await settled_entries(stack, 1)
        assert entry.status is JobStatus.FAILED and not entry.counted
