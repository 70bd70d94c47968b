"""Helpers shared by the end-to-end tests (tests/e2e/test_*.py): reading the fake's records.

No helper times the bot: the fake Discord refuses an acknowledgement after its `ack_window`
(Discord's 3 s, answered 404/10062), so `wait_acknowledged()` returning a callback type, or
`interaction.acknowledged`, is the proof that the bot answered in time.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from bot.storage.schema import pending_deliveries
from bot.wording import presentation as ui
from fakes.discord.server import (
    FakeChannel,
    FakeDiscord,
    FakeInteraction,
    FakeMessage,
    RecordedCall,
)
from fakes.stack import LocalStack

CHANNEL_MESSAGE_ROUTES = ("/channels/{channel_id}/messages",)
CHANNEL_POSTS = "/channels/{channel_id}/messages"
# Callback types that create or change a message (4 message, 7 update).
MESSAGE_CALLBACK_TYPES = (4, 7)
DEFERRED = 5  # the callback type of a public "thinking…" deferral


def title(message: FakeMessage) -> str:
    return str(message.embeds[0].get("title", "")) if message.embeds else ""


def description(message: FakeMessage) -> str:
    return str(message.embeds[0].get("description", "")) if message.embeds else ""


def field_values(message: FakeMessage) -> dict[str, str]:
    if not message.embeds:
        return {}
    return {item["name"]: item["value"] for item in message.embeds[0].get("fields", [])}


def button_labels(message: FakeMessage) -> list[str]:
    return [str(c.get("label")) for c in message.walk_components() if c.get("type") == 2]


def is_final(message: FakeMessage) -> bool:
    return message.deleted or title(message) in ui.FINAL_TITLES


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        image.load()  # decodes the whole file: a truncated upload fails here
        return image.size


def message_payload(call: RecordedCall) -> dict[str, Any] | None:
    """The message body a REST call carried (None for calls that send no message)."""
    body = call.json
    if not isinstance(body, dict):
        return None
    if call.route.endswith("/callback"):
        if body.get("type") not in MESSAGE_CALLBACK_TYPES:
            return None
        data = body.get("data")
        return data if isinstance(data, dict) else None
    if call.method in ("POST", "PATCH") and (
        "/webhooks/" in call.route or call.route in CHANNEL_MESSAGE_ROUTES
    ):
        return body
    return None


def assert_pings_nobody(fake: FakeDiscord) -> int:
    """Every message-bearing call carried allowed_mentions that allow no ping, and no message
    the bot sent pinged anyone. Returns how many message-bearing calls were checked."""
    checked = 0
    for call in fake.calls:
        payload = message_payload(call)
        if payload is None:
            continue
        checked += 1
        allowed = payload.get("allowed_mentions")
        assert allowed is not None, f"{call.method} {call.route} sent no allowed_mentions"
        assert allowed.get("parse", []) == [], (call.route, allowed)
        assert not allowed.get("users") and not allowed.get("roles"), (call.route, allowed)
        assert not allowed.get("replied_user"), (call.route, allowed)
    for message in fake.messages.values():
        assert not message.mention_everyone, message.id
        assert not message.mentioned_user_ids, message.id
        assert not message.mentioned_role_ids, message.id
    return checked


def first_channel_post(fake: FakeDiscord, channel: FakeChannel) -> FakeMessage | None:
    """The first normal channel message (sent with the bot token, not an interaction webhook)."""
    return next((m for m in fake.channel_messages(channel) if m.source == "channel"), None)


async def private_refusal(interaction: FakeInteraction) -> FakeMessage:
    """The bot acknowledged at once, then refused the member alone, leaving nothing public.

    `/imagine` and Re-roll defer publicly before admission (deferral-first); a refusal deletes
    the public "thinking…" placeholder and sends an ephemeral follow-up.
    """
    assert await interaction.wait_acknowledged() == DEFERRED  # inside the fake's 3 s window
    reply = await interaction.wait_private_reply()
    assert reply.ephemeral and not reply.loading
    assert reply.allowed_mentions is not None and reply.allowed_mentions.get("parse") == []
    assert interaction.public_messages() == []
    original = interaction.original_message()
    assert original is not None and original.deleted
    return reply


def bot_posts(fake: FakeDiscord) -> list[str]:
    """Paths of every message the bot posted with its own token (not through an interaction)."""
    return [c.path for c in fake.calls_to("POST", CHANNEL_POSTS)]


def dm_messages(fake: FakeDiscord, channel: FakeChannel) -> list[FakeMessage]:
    return [m for m in fake.channel_messages(channel) if m.source == "channel"]


async def kept_count(stack: LocalStack, user_id: int) -> int:
    """Results kept for this member (read straight from the table)."""
    async with stack.services.database.read() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(pending_deliveries)
            .where(pending_deliveries.c.user_id == user_id)
        )).scalar_one())
