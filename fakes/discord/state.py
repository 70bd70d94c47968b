"""The fake Discord's mutable state: config, clock, records, interactions and message changes.

REST handlers and the gateway both act on one `FakeDiscordState`; every change notifies
`changed` (an asyncio.Condition) so tests wait for events instead of sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from fakes.clock import OffsetClock
from fakes.discord.limits import (
    DiscordAPIError,
    already_acknowledged,
    empty_message,
    invalid_form,
    invalid_webhook_token,
    unknown_interaction,
)
from fakes.discord.models import (
    APPLICATION_COMMAND,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    JSON,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeUser,
    MessageEdit,
    RecordedCall,
    SnowflakeFactory,
    UploadedFile,
    resolve_mentions,
    utcnow_iso,
)
from fakes.discord.spec_check import SpecViolation

T = TypeVar("T")


@dataclass
class FakeDiscordConfig:
    """Knobs of the fake; tests shorten the windows. Mutable at run time."""

    bot_token: str = "fake-bot-token"
    bot_name: str = "Imagine"
    ack_window: float = 3.0  # seconds to acknowledge an interaction (10062 after)
    token_lifetime: float = 15 * 60.0  # interaction token validity (50027 after)
    edit_rate_limit: int = 5  # edits of one message allowed per window (429 past it)
    edit_rate_window: float = 5.0
    advertise_rate_limits: bool = True  # send X-RateLimit-* on successful edits, like Discord
    heartbeat_interval: float = 41.25
    privileged_intents: int = 0  # privileged intents the app may use (4014 otherwise)
    recommended_shards: int = 1  # what GET /gateway/bot recommends
    # GET /gateway/bot's session_start_limit: the daily IDENTIFY budget, what is left of it when
    # the fake starts (each IDENTIFY spends one), and how long until it resets.
    session_start_total: int = 1000
    session_starts_remaining: int = 1000
    session_start_reset_after: float = 24 * 3600.0
    check_spec: bool = True  # check requests against Discord's OpenAPI spec (spec_check)


@dataclass(eq=False)
class FakeInteraction:
    """An interaction the fake sent, and how the bot answered it."""

    id: int
    token: str = field(repr=False)
    type: int
    data: JSON
    guild: FakeGuild | None
    channel: FakeChannel
    member: FakeMember
    created_at: float
    attachment_size_limit: int
    payload: JSON = field(repr=False)  # the INTERACTION_CREATE data, token included
    target_message_id: int | None = None  # the message a component/modal belongs to
    acknowledged_at: float | None = None
    response_type: int | None = None
    ephemeral: bool = False
    original_message_id: int | None = None
    followup_message_ids: list[int] = field(default_factory=list)
    deferred_pending: bool = False  # a type-5 deferral not yet resolved by a followup/edit
    autocomplete_choices: list[JSON] | None = None
    modal: JSON | None = None
    _state: FakeDiscordState | None = field(default=None, repr=False)

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def ack_latency(self) -> float | None:
        """Seconds from INTERACTION_CREATE to the bot's acknowledgement."""
        return None if self.acknowledged_at is None else self.acknowledged_at - self.created_at

    def original_message(self) -> FakeMessage | None:
        assert self._state is not None
        if self.original_message_id is None:
            return None
        return self._state.messages.get(self.original_message_id)

    def followups(self) -> list[FakeMessage]:
        assert self._state is not None
        return [self._state.messages[i] for i in self.followup_message_ids]

    def private_reply(self) -> FakeMessage | None:
        """What only the member saw: an ephemeral response, or an ephemeral follow-up."""
        original = self.original_message()
        if original is not None and original.ephemeral and not original.deleted:
            return original
        return next(
            (m for m in self.followups() if m.ephemeral and not m.deleted), None
        )

    def public_messages(self) -> list[FakeMessage]:
        """Messages of this interaction that everyone in the channel can see now."""
        original = self.original_message()
        found = [original] if original is not None else []
        found += self.followups()
        return [m for m in found if not m.ephemeral and not m.deleted]

    async def wait_private_reply(self, timeout: float = 5.0) -> FakeMessage:  # noqa: ASYNC109
        """Wait for the ephemeral answer (a refusal, under the bot's deferral-first design)."""
        assert self._state is not None
        return await self._state.wait_for(self.private_reply, timeout=timeout)

    async def wait_acknowledged(self, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Wait until the bot acknowledged; return the callback type."""
        assert self._state is not None
        return await self._state.wait_for(lambda: self.response_type, timeout=timeout)

    async def wait_original(
        self,
        predicate: Callable[[FakeMessage], bool] = lambda _: True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> FakeMessage:
        """Wait until the original response exists and satisfies `predicate`."""

        def ready() -> FakeMessage | None:
            message = self.original_message()
            return message if message is not None and predicate(message) else None

        assert self._state is not None
        return await self._state.wait_for(ready, timeout=timeout)


@dataclass
class _EditBucket:
    window_start: float
    count: int = 0


@dataclass(frozen=True)
class RateLimitInfo:
    limit: int
    remaining: int
    reset_after: float
    bucket: str

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": f"{time.time() + self.reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{self.reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket,
        }


class FakeDiscordState:
    """Everything the fake knows; handlers mutate it, tests read and wait on it."""

    def __init__(self, config: FakeDiscordConfig, clock: OffsetClock) -> None:
        self.config = config
        self.clock = clock
        self.snowflake = SnowflakeFactory()
        self.application_id = self.snowflake()
        self.bot_user = FakeUser(self.application_id, config.bot_name, bot=True)
        self.owner = FakeUser(self.snowflake(), "owner")
        self.users: dict[int, FakeUser] = {u.id: u for u in (self.bot_user, self.owner)}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.interactions_by_token: dict[str, FakeInteraction] = {}
        self.calls: list[RecordedCall] = []
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        self.internal_errors: list[Exception] = []  # bugs in the fake itself (answered 503)
        self.spec_violations: list[SpecViolation] = []  # requests that broke Discord's spec
        self.rate_limited_count = 0
        self.rate_limit_exhausted_count = 0
        self.identifies = 0  # IDENTIFYs accepted: each spent one session start
        self.token_resets = 0  # IDENTIFYs past the budget: Discord reset the bot token
        self.attachment_base = ""
        # Files members attached to slash commands (served like message attachments).
        self.uploads: dict[int, FakeAttachment] = {}
        self.changed = asyncio.Condition()
        self._edit_buckets: dict[int, _EditBucket] = {}

    @property
    def session_starts_left(self) -> int:
        return max(0, self.config.session_starts_remaining - self.identifies)

    def session_start_limit(self) -> JSON:
        """`session_start_limit` as GET /gateway/bot sends it (`reset_after` in ms)."""
        return {
            "total": self.config.session_start_total,
            "remaining": self.session_starts_left,
            "reset_after": int(self.config.session_start_reset_after * 1000),
            "max_concurrency": 1,
        }

    # -- waiting ---------------------------------------------------------------------------

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> T:
        """Wait until `predicate()` returns something truthy (re-checked on every change)."""
        async with self.changed:
            try:
                result = await asyncio.wait_for(self.changed.wait_for(predicate), timeout)
            except TimeoutError:
                recent = ", ".join(f"{c.method} {c.route} -> {c.status}" for c in self.calls[-8:])
                raise TimeoutError(
                    f"fake Discord: condition not met within {timeout}s; last calls: {recent};"
                    f" fake errors: {self.internal_errors!r};"
                    f" spec violations: {[str(v) for v in self.spec_violations]}"
                ) from None
        assert result is not None
        return result

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The bot's DM channel with `user`, opened on first use."""
        for channel in self.channels.values():
            if channel.recipient is user:
                return channel
        channel = FakeChannel(self.snowflake(), None, "", type=1, recipient=user)
        self.channels[channel.id] = channel
        return channel

    # -- interactions ----------------------------------------------------------------------

    def new_token(self) -> str:
        return "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)

    def interaction_for_callback(self, interaction_id: int, token: str) -> FakeInteraction:
        interaction = self.interactions.get(interaction_id)
        if interaction is None or not secrets.compare_digest(interaction.token, token):
            raise unknown_interaction()
        if interaction.acknowledged:
            raise already_acknowledged()
        if self.clock() - interaction.created_at > self.config.ack_window:
            raise unknown_interaction()
        return interaction

    def interaction_for_webhook(self, application_id: int, token: str) -> FakeInteraction:
        if application_id != self.application_id:
            raise DiscordAPIError(404, 10015, "Unknown Webhook")
        interaction = self.interactions_by_token.get(token)
        if interaction is None:
            raise invalid_webhook_token()
        if self.clock() - interaction.created_at > self.config.token_lifetime:
            raise invalid_webhook_token()
        return interaction

    # -- messages --------------------------------------------------------------------------

    def create_message(
        self,
        *,
        channel: FakeChannel,
        payload: JSON,
        files: Sequence[UploadedFile],
        source: str,
        interaction: FakeInteraction | None = None,
        message_type: int = 0,
        extra_flags: int = 0,
        allow_empty: bool = False,
    ) -> FakeMessage:
        flags = int(payload.get("flags") or 0) | extra_flags
        message = FakeMessage(
            id=self.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.bot_user,
            created_at=self.clock(),
            created_wall_time=utcnow_iso(),
            content=str(payload.get("content") or ""),
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            flags=flags,
            allowed_mentions=payload.get("allowed_mentions"),
            type=message_type,
            interaction_id=interaction.id if interaction else None,
            webhook_id=self.application_id if interaction else None,
            source=source,
        )
        message.attachments = self._resolve_attachments(payload, files, [])
        if not allow_empty and _is_empty(message):
            raise empty_message()
        self._update_mentions(message)
        self.messages[message.id] = message
        return message

    def edit_message(
        self,
        message: FakeMessage,
        payload: JSON,
        files: Sequence[UploadedFile],
        route: str,
        *,
        finish_loading: bool = True,
    ) -> None:
        """Apply a PATCH-style change: present fields replace, absent fields stay."""
        attachments = message.attachments
        if "attachments" in payload or files:
            attachments = self._resolve_attachments(payload, files, message.attachments)
        content = message.content
        if "content" in payload:
            content = str(payload["content"] or "")
        embeds = list(payload["embeds"] or []) if "embeds" in payload else message.embeds
        components = (
            list(payload["components"] or []) if "components" in payload else message.components
        )
        flags = message.flags
        if finish_loading:
            flags &= ~FLAG_LOADING
        if "flags" in payload and payload["flags"] is not None:
            # Only SUPPRESS_EMBEDS can change on an existing message.
            flags = (flags & ~FLAG_SUPPRESS_EMBEDS) | (int(payload["flags"]) & FLAG_SUPPRESS_EMBEDS)
        if not (content or embeds or attachments or components):
            raise empty_message()
        message.content = content
        message.embeds = embeds
        message.components = components
        message.attachments = attachments
        message.flags = flags
        if "allowed_mentions" in payload:
            message.allowed_mentions = payload["allowed_mentions"]
        message.edits.append(
            MessageEdit(
                at=self.clock(),
                wall_time=utcnow_iso(),
                route=route,
                payload=payload,
                filenames=tuple(f.filename for f in files),
            )
        )
        self._update_mentions(message)

    def take_edit(self, message_id: int) -> RateLimitInfo:
        """Count one edit of `message_id`; raise 429 when its bucket is empty."""
        now = self.clock()
        limit, window = self.config.edit_rate_limit, self.config.edit_rate_window
        bucket = self._edit_buckets.get(message_id)
        if bucket is None or now >= bucket.window_start + window:
            bucket = self._edit_buckets[message_id] = _EditBucket(window_start=now)
        reset_after = max(bucket.window_start + window - now, 0.001)
        bucket_hash = hashlib.sha1(f"message-edit:{message_id}".encode()).hexdigest()[:16]
        if bucket.count >= limit:
            self.rate_limited_count += 1
            info = RateLimitInfo(limit, 0, reset_after, bucket_hash)
            headers = info.headers() | {
                "Retry-After": str(math.ceil(reset_after)),
                "Via": "1.1 google",
                "X-RateLimit-Scope": "user",
            }
            message = "You are being rate limited."
            body: JSON = {"message": message, "retry_after": round(reset_after, 3), "global": False}
            raise DiscordAPIError(429, 0, message, headers=headers, body=body)
        bucket.count += 1
        if bucket.count >= limit:
            self.rate_limit_exhausted_count += 1
        return RateLimitInfo(limit, limit - bucket.count, reset_after, bucket_hash)

    def _resolve_attachments(
        self, payload: JSON, files: Sequence[UploadedFile], existing: list[FakeAttachment]
    ) -> list[FakeAttachment]:
        uploads = {f.index: f for f in files if f.index is not None}
        listed = payload.get("attachments")
        if listed is None:
            return [*existing, *(self._attachment(f, None) for f in files)]
        by_id = {a.id: a for a in existing}
        result: list[FakeAttachment] = []
        for position, entry in enumerate(listed):
            key = int(entry["id"])
            if key in by_id:
                result.append(by_id[key])
            elif key in uploads:
                result.append(self._attachment(uploads[key], entry))
            else:
                raise invalid_form(
                    ("attachments", position, "id"), "ATTACHMENT_NOT_FOUND", "Unknown attachment"
                )
        return result

    def _attachment(self, upload: UploadedFile, entry: JSON | None) -> FakeAttachment:
        entry = entry or {}
        return FakeAttachment(
            id=self.snowflake(),
            filename=str(entry.get("filename") or upload.filename),
            data=upload.data,
            content_type=upload.content_type,
            description=entry.get("description"),
        )

    def _update_mentions(self, message: FakeMessage) -> None:
        everyone, users, roles = resolve_mentions(message.content, message.allowed_mentions)
        message.mention_everyone, message.mentioned_user_ids, message.mentioned_role_ids = (
            everyone,
            users,
            roles,
        )

    def message_payload(self, message: FakeMessage) -> JSON:
        data = message.payload(attachment_base=self.attachment_base, users=self.users)
        interaction = self.interactions.get(message.interaction_id or 0)
        if interaction is not None:
            data["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.member.user.payload(),
                "authorizing_integration_owners": _owners(interaction),
            }
        return data


def _owners(interaction: FakeInteraction) -> dict[str, str]:
    return dict(interaction.payload.get("authorizing_integration_owners") or {})


def _is_empty(message: FakeMessage) -> bool:
    return not (message.content or message.embeds or message.attachments or message.components)


def interaction_message_type(interaction: FakeInteraction) -> int:
    """Discord's message type for an interaction's response (20 for slash commands)."""
    return 20 if interaction.type == APPLICATION_COMMAND else 0


def response_flags(payload: JSON | None) -> int:
    return int((payload or {}).get("flags") or 0) & FLAG_EPHEMERAL
