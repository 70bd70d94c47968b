"""`python -m bot demo`: the whole product, offline, with no accounts and no keys.

Starts the fake Discord and the mock Novita in-process, runs the real bot against them, plays
one member typing `/imagine`, prints what the member would see as the message changes, and saves
the delivered image.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

from PIL import Image

from bot.imaging import InvalidSizeError, resolve_size
from fakes.discord.server import FakeMessage
from fakes.stack import LocalStack, StackOptions

DEMO_TIME_SCALE = 0.25  # a 1024×1536 job takes about 6 s instead of about 25 s


def render(message: FakeMessage) -> str:
    """A plain-text picture of a Discord message: embed title, fields, buttons, attachments."""
    lines: list[str] = []
    if message.loading:
        lines.append("  imagine-bot is thinking…")
    for embed in message.embeds:
        lines.append(f"  ┃ {embed.get('title', '')}")
        fields: list[dict[str, Any]] = embed.get("fields", [])
        for item in fields:
            if item.get("name") in ("Progress", "Size", "Took", "Note"):
                lines.append(f"  ┃   {item['name']}: {item['value']}")
        if embed.get("image"):
            lines.append(f"  ┃   [image: {embed['image'].get('url')}]")
    buttons = [c.get("label") for c in message.walk_components() if c.get("type") == 2]
    if buttons:
        lines.append("  " + "  ".join(f"[ {label} ]" for label in buttons))
    for attachment in message.attachments:
        lines.append(f"  📎 {attachment.filename} ({len(attachment.data) // 1024} KiB)")
    return "\n".join(lines)


def teach_demo_durations(stack: LocalStack, size_text: str) -> None:
    """Give the engine a short history at the mock's sped-up pace.

    A real bot learns how long jobs take from the jobs it runs; a fresh demo has none and would
    estimate progress from real-world durations (4× slower than the demo's mock).
    """
    try:
        size = resolve_size(size_text)
    except InvalidSizeError:
        return  # the bot itself will explain the bad size
    timing = stack.mock.config.timing
    seconds = timing.mean_seconds(size.width, size.height) * timing.time_scale
    for _ in range(25):  # enough for the moving average to forget the real-world prior
        stack.services.engine.durations.observe(size, seconds)


async def run(prompt: str, size: str, out: str) -> int:
    options = StackOptions(time_scale=DEMO_TIME_SCALE, settings={"progress_edit_interval": 1.0})
    print("Starting a fake Discord, a mock Novita and the real bot on 127.0.0.1 …")
    async with LocalStack(options) as stack:
        teach_demo_durations(stack, size)
        print(f"alice types: /imagine prompt:{prompt} size:{size}\n")
        started = time.monotonic()
        interaction = await stack.imagine(stack.alice, prompt, size)
        shown = ""
        last_revision = -1

        def changed() -> FakeMessage | None:
            message = interaction.original_message()
            if message is None:
                return None
            revision = len(message.edits)
            return message if revision != last_revision else None

        while True:
            message = await stack.fake.wait_for(changed, timeout=60)
            last_revision = len(message.edits)
            text = render(message)
            if text != shown:
                print(f"[{time.monotonic() - started:5.1f} s]\n{text}\n")
                shown = text
            if message.attachments or (message.embeds and not message.components):
                break
            if message.attachments == [] and any(
                c.get("label") == "Re-roll" for c in message.walk_components()
            ):
                break

        if not message.attachments:
            print("The job ended without an image (see above).")
            return 1
        data = message.attachments[0].data
        await asyncio.to_thread(Path(out).write_bytes, data)
        with Image.open(io.BytesIO(data)) as image:
            print(f"Saved the delivered image to {out} ({image.width}×{image.height} JPEG).")
    return 0
