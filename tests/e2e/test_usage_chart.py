"""End to end: /imagine-admin usage answers with its text at once, then edits the chart in as
a PNG upload that the embed shows (`attachment://usage.png`)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.reports.usage_chart import DPI, HEIGHT_INCHES, WIDTH_INCHES, UsageChartData
from fakes.discord.server import FakeMessage
from fakes.stack import LocalStack
from tests.e2e.test_admin import admin, imagine_ok

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60), pytest.mark.stack(fixed_duration=10.0)]

EDIT_ORIGINAL = "/webhooks/{application_id}/{token}/messages/@original"


async def test_usage_attaches_a_chart_the_embed_shows(stack: LocalStack) -> None:
    await imagine_ok(stack, stack.alice, "a fox")
    await imagine_ok(stack, stack.alice, "another fox")
    await imagine_ok(stack, stack.bob, "a castle")

    renderer = stack.bot.get_cog("Admin").usage_replies.renderer  # type: ignore[union-attr]
    drawn: list[UsageChartData] = []
    render = renderer.render

    async def capture(data: UsageChartData) -> bytes:
        drawn.append(data)
        return await render(data)

    renderer.render = capture  # type: ignore[method-assign]

    reply = await admin(stack, "usage")
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert fields["Images today"] == "3"  # the text summary is there at once
    assert fields["Last 30 days"].startswith("3 images · $0.06 estimated")
    assert fields[next(n for n in fields if n.startswith("Top members, "))] == (
        f"1. <@{stack.alice.id}> — 2 images\n2. <@{stack.bob.id}> — 1 image"
    )

    def charted() -> FakeMessage | None:
        message = stack.fake.messages[reply.id]
        return message if message.attachments else None

    message = await stack.fake.wait_for(charted, timeout=10)
    assert message.ephemeral
    [upload] = [
        call
        for call in stack.fake.calls_to("PATCH", EDIT_ORIGINAL)
        if "usage.png" in call.filenames
    ]
    assert upload.status == 200 and upload.filenames == ["usage.png"]
    [embed] = upload.json["embeds"]
    assert embed["image"]["url"] == "attachment://usage.png"
    assert embed["fields"] == reply.embeds[0]["fields"]  # the text stays for screen readers
    [attachment] = upload.json["attachments"]
    assert attachment["description"].startswith("Chart: 3 images and $0.06 estimated spend")
    with Image.open(io.BytesIO(upload.files[0].data)) as png:
        assert png.format == "PNG"
        png.load()  # the whole file decodes
        assert png.size == (WIDTH_INCHES * DPI, HEIGHT_INCHES * DPI)
    assert message.attachments[0].data == upload.files[0].data
    # The chart names members by their display names, the days end today.
    [data] = drawn
    assert list(data.top_members) == [("alice", 2), ("bob", 1)]
    assert len(data.days) == 30 and sum(data.days[-1].images_by_status.values()) == 3
