"""End to end: the real discord.py bot ↔ the fake Discord ↔ the mock Novita, over real sockets.

Each test plays members through `LocalStack` and asserts on what Discord would have recorded:
REST calls, message edits, attachments' bytes, acknowledgement latency, allowed_mentions.
"""

from __future__ import annotations

import asyncio
import gc
import io
from pathlib import Path

import pytest

from bot.app.bot import ImagineBot
from bot.jobs.model import JobRequest
from bot.limits.admission import Admission
from bot.wording import presentation as ui
from fakes import demo
from fakes.discord.server import FakeMember
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import (
    DEFERRED,
    assert_pings_nobody,
    button_labels,
    description,
    field_values,
    is_final,
    jpeg_size,
    private_refusal,
    title,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

async def test_happy_path_defers_publicly_shows_progress_and_delivers_the_image(
    stack: LocalStack,
) -> None:
    interaction = await stack.imagine(stack.alice, "a poster that says HELLO", "768*512")

    # Deferred "thinking…" (the fake refuses an acknowledgement after Discord's 3 s window).
    assert await interaction.wait_acknowledged() == 5
    assert not interaction.ephemeral

    message = await stack.wait_result(interaction)
    assert title(message) == ui.RESULT_TITLE
    assert not message.loading and not message.ephemeral
    assert [(c.method, c.route) for c in stack.fake.calls if c.route.endswith("/callback")] == [
        ("POST", "/interactions/{interaction_id}/{token}/callback")
    ]

    # Progress: at least one edit before the result shows a bar with an estimated percent
    # and a Cancel button.
    progress = [edit.payload for edit in message.edits[:-1]]
    assert progress, "the message went straight to the result"
    shown = [
        item["value"]
        for payload in progress
        for item in payload["embeds"][0].get("fields", [])
        if item["name"] == "Progress"
    ]
    assert shown and all("(estimate)" in value for value in shown)
    assert all(("▰" in value or "▱" in value) for value in shown)
    assert all(
        c.get("label") == "Cancel"
        for payload in progress
        for row in payload["components"]
        for c in row["components"]
    )

    # The result: the task's JPEG at the requested size, shown by the embed, with buttons.
    (task_id,) = stack.mock.tasks
    (attachment,) = message.attachments
    assert attachment.filename == f"{task_id}.jpeg"
    assert jpeg_size(attachment.data) == (768, 512)
    assert message.embeds[0]["image"]["url"] == f"attachment://{task_id}.jpeg"
    assert field_values(message)["Size"] == "768×512"
    assert field_values(message)["Requested by"] == f"<@{stack.alice.id}>"
    assert button_labels(message) == ["Re-roll", "Edit", "Remix", "Delete"]
    assert message.edits[-1].filenames == (f"{task_id}.jpeg",)
    assert stack.mock.stats.submits == 1 and stack.mock.tasks[task_id].downloads == 1
    assert stack.fake.rate_limited_count == 0


async def test_mentions_in_a_prompt_ping_nobody(stack: LocalStack) -> None:
    prompt = f"hi @everyone and @here, <@{stack.bob.id}> and <@&{stack.mod_role.id}>"
    interaction = await stack.imagine(stack.alice, prompt, "512*512")
    message = await stack.wait_result(interaction)
    assert title(message) == ui.RESULT_TITLE
    # The prompt is shown as typed, with @everyone defused.
    assert "@\u200beveryone" in description(message)

    # A failing job and an ephemeral refusal carry the prompt too.
    failing = await stack.imagine(stack.bob, prompt + " [mock:failed]", "512*512")
    assert title(await stack.wait_result(failing)) == ui.FAILURE_TITLE
    refused = await stack.imagine(stack.bob, prompt, "huge")
    await refused.wait_acknowledged()

    assert assert_pings_nobody(stack.fake) >= 6
    assert interaction.original_message() is message
    assert message.allowed_mentions == {"parse": []}


@pytest.mark.parametrize(
    ("prompt", "size", "says"),
    [
        ("a cat", "99*99", "That size doesn't work"),
        ("a cat", "big", "That size doesn't work"),
        ("   ", None, "That prompt doesn't work"),
        ("", "512*512", "That prompt doesn't work"),
        ("\u200b\u2060\u00ad\ufeff", None, "That prompt doesn't work: it has no visible"),
    ],
)
async def test_bad_input_is_refused_ephemerally_in_time_and_never_submitted(
    stack: LocalStack, prompt: str, size: str | None, says: str
) -> None:
    interaction = await stack.imagine(stack.alice, prompt, size)
    assert await interaction.wait_acknowledged() == 4  # inside the fake's 3 s window
    assert interaction.ephemeral
    message = interaction.original_message()
    assert message is not None and message.ephemeral and not message.loading
    assert message.content.startswith(says)
    assert stack.mock.stats.submits == 0
    assert not stack.bot.generation.jobs
    assert_pings_nobody(stack.fake)


async def test_a_delivered_image_leaves_no_copy_behind_for_the_garbage_collector(
    stack: LocalStack,
) -> None:
    """The upload's buffer is freed as soon as Discord has it, by reference counting alone
    (discord.py leaves it in a reference cycle; see bot.interactions.transport.attachments)."""
    gc.collect()
    gc.disable()
    try:
        interaction = await stack.imagine(stack.alice, "a lighthouse", "512*512")
        message = await stack.wait_result(interaction)
        await stack.bot.generation.results_recorded()
        (attachment,) = message.attachments

        def holds_the_image(obj: object) -> bool:
            if not isinstance(obj, io.BytesIO) or obj.closed:
                return False
            return obj.getvalue() == attachment.data

        assert not [obj for obj in gc.get_objects() if holds_the_image(obj)]
    finally:
        gc.enable()


async def test_a_burst_shares_a_bounded_pool_of_connections_to_discord(
    monkeypatch: pytest.MonkeyPatch, make_stack: StackFactory
) -> None:
    """discord.py's own pool is unbounded (a connection, and a TLS handshake, per request in
    flight); the bot's keeps a few alive and queues the rest on them."""
    monkeypatch.setattr(ImagineBot, "discord_http_connections", 4)
    async with make_stack(fixed_duration=5.0, draw_prompt=False) as stack:
        members = [stack.fake.add_member(stack.guild, f"user{n}") for n in range(20)]
        interactions = await asyncio.gather(
            *(stack.imagine(member, f"picture {n}", "512*512") for n, member in enumerate(members))
        )
        messages = await asyncio.gather(*(stack.wait_result(i) for i in interactions))
    assert all(title(message) == ui.RESULT_TITLE for message in messages)
    assert all(i.acknowledged for i in interactions)  # each inside the fake's 3 s window
    peers = {call.peer for call in stack.fake.calls if "/interactions/" in call.path}
    assert None not in peers and 1 <= len(peers) <= 4, peers


async def test_requester_name_is_taken_from_the_member(stack: LocalStack) -> None:
    """The footer names who asked (bob), so a shared channel can tell jobs apart."""
    member: FakeMember = stack.bob
    interaction = await stack.imagine(member, "bob's fox", "512*512")
    message = await interaction.wait_original(
        lambda m: bool(m.embeds) and not is_final(m), timeout=10
    )
    assert message.embeds[0]["footer"]["text"] == "Requested by bob"
    await stack.wait_result(interaction)


async def test_demo_runs_end_to_end_and_writes_a_jpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    make_stack: StackFactory,
) -> None:
    monkeypatch.setattr(demo, "DEMO_TIME_SCALE", 0.05)  # the same run, five times faster
    # The demo's own stack, built by the factory so its requests get the spec check too.
    monkeypatch.setattr(demo, "LocalStack", lambda options: make_stack(**vars(options)))
    out = tmp_path / "demo.jpeg"
    code = await asyncio.wait_for(demo.run("a poster that says DEMO", "512*512", str(out)), 30)
    assert code == 0
    assert jpeg_size(out.read_bytes()) == (512, 512)
    printed = capsys.readouterr().out
    assert "(estimate)" in printed and ui.RESULT_TITLE in printed
    assert f"Saved the delivered image to {out} (512×512 JPEG)." in printed


MARKDOWN_HEAVY = "**bold** _it_ `code` ||secret|| > quote @everyone <@&1> ~~x~~ # h "


@pytest.mark.parametrize("ending", ["", " [mock:failed]", " [mock:nsfw]"])
async def test_a_longest_markdown_heavy_prompt_fits_every_message(
    stack: LocalStack, ending: str
) -> None:
    """The fake rejects embeds over Discord's limits, so any ending that overflows fails here."""
    prompt = (MARKDOWN_HEAVY * 40)[: 2000 - len(ending)] + ending
    assert len(prompt) == 2000
    interaction = await stack.imagine(stack.alice, prompt, "512*512")
    message = await stack.wait_result(interaction)
    assert title(message) in (ui.RESULT_TITLE, ui.FAILURE_TITLE, ui.WITHHELD_TITLE)
    assert all(call.status == 200 for call in stack.fake.calls if call.route.startswith("/web"))
    assert_pings_nobody(stack.fake)


async def test_a_long_prompt_can_be_cancelled(stack: LocalStack) -> None:
    prompt = (MARKDOWN_HEAVY * 40)[:1980] + " [mock:never-finish]"
    interaction = await stack.imagine(stack.alice, prompt, "512*512")
    message = await interaction.wait_original(lambda m: "Cancel" in button_labels(m))
    await stack.click(message, "Cancel", stack.alice)
    assert title(await stack.wait_result(interaction)) == ui.CANCELLED_TITLE
    assert all(call.status in (200, 204) for call in stack.fake.calls)


async def test_imagine_in_a_direct_message(stack: LocalStack) -> None:
    interaction = await stack.imagine(
        stack.alice, "a postcard", "512*512", channel=stack.fake.dm_channel(stack.alice)
    )
    message = await stack.wait_result(interaction)
    assert title(message) == ui.RESULT_TITLE
    assert message.guild_id is None


@pytest.mark.timeout(30)
async def test_a_slow_limit_check_is_acknowledged_at_once_and_the_job_runs_when_it_answers(
    make_stack: StackFactory,
) -> None:
    async with make_stack() as stack:
        admissions = stack.bot.generation.admissions
        release = asyncio.Event()
        real_admit = admissions.admit

        async def slow_admit(request: JobRequest) -> Admission:
            await release.wait()  # the database is slow to answer ...
            return await real_admit(request)

        admissions.admit = slow_admit  # type: ignore[method-assign]
        interaction = await stack.imagine(stack.alice, "a slow database", "512*512")
        # Acknowledged publicly before admission answered: nobody is told "busy".
        assert await interaction.wait_acknowledged() == DEFERRED
        original = interaction.original_message()
        assert original is not None and original.loading and not interaction.ephemeral
        assert stack.mock.stats.submits == 0

        release.set()  # ... and then admits it: the same message becomes the result
        message = await stack.wait_result(interaction)
        assert title(message) == ui.RESULT_TITLE
        assert interaction.followups() == []


async def test_a_refusal_after_the_deferral_is_private_and_leaves_nothing_public(
    stack: LocalStack,
) -> None:
    await stack.wait_result(await stack.imagine(stack.alice, "a quiet harbour", "512*512"))
    await stack.services.guild_admin.add_word(stack.guild.id, stack.admin.id, "lighthouse")
    public_before = [m.id for m in stack.fake.channel_messages(stack.channel)
                     if not m.deleted and not m.ephemeral]

    refused = await stack.imagine(stack.alice, "a lighthouse at dusk", "512*512")
    reply = await private_refusal(refused)  # acknowledged by a public deferral, then ...
    assert "lighthouse" in reply.content  # ... refused to alice alone, naming the term
    # Everyone else sees what they saw before: no placeholder left, no refusal.
    public_after = [m.id for m in stack.fake.channel_messages(stack.channel)
                    if not m.deleted and not m.ephemeral]
    assert public_after == public_before
    assert len(stack.mock.tasks) == 1
