"""The fake Discord's world: users, guilds, channels, roles, members, messages, records.

Plain data with the payload builders discord.py 2.7.1 parses; no I/O here. See
`fakes.discord.server` for the public API.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024  # discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
_FILESIZE_BY_TIER = {2: 50 << 20, 3: 100 << 20}  # tiers 0 and 1 keep the default

ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
# What @everyone gets in a new guild (close enough to Discord's default for bots' checks).
EVERYONE_PERMISSIONS = (discord.Permissions.general() | discord.Permissions.text()).value & ~(
    discord.Permissions.advanced().value
    | discord.Permissions(manage_guild=True, manage_channels=True, manage_roles=True).value
    | discord.Permissions(manage_messages=True, manage_threads=True, ban_members=True).value
    | discord.Permissions(kick_members=True, manage_webhooks=True, view_audit_log=True).value
)
# What the bot's integration role grants unless a test says otherwise.
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    use_external_emojis=True,
    send_messages_in_threads=True,
).value

# Message flags (discord.MessageFlags values).
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

# Interaction types and callback types (Discord's numbers).
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat()


class SnowflakeFactory:
    """Unique snowflakes whose timestamp part is (about) the current time."""

    def __init__(self) -> None:
        self._sequence = itertools.count(1)
        # Guild ids take consecutive milliseconds from an hour ago, so that consecutive guilds
        # land on consecutive shards (`(id >> 22) % shard_count`) and never collide with others.
        self._guild_millis = int(time.time() * 1000) - DISCORD_EPOCH_MS - 3_600_000

    def __call__(self) -> int:
        millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (millis << 22) | (next(self._sequence) & 0x3FFFFF)

    def guild_id(self) -> int:
        self._guild_millis += 1
        return (self._guild_millis << 22) | (next(self._sequence) & 0x3FFFFF)


def filesize_limit_for_tier(premium_tier: int) -> int:
    return _FILESIZE_BY_TIER.get(premium_tier, DEFAULT_FILESIZE_LIMIT)


@dataclass(eq=False)
class FakeUser:
    id: int
    name: str
    bot: bool = False
    global_name: str | None = None
    accepts_dms: bool = True

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,  # required by the spec's UserResponse, though null
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass(eq=False)
class FakeRole:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeChannel:
    id: int
    guild_id: int | None
    name: str
    type: int = 0  # 0 text, 1 DM
    nsfw: bool = False
    position: int = 0
    bot_permissions: int | None = None  # None: the guild's bot permissions apply
    recipient: FakeUser | None = None  # the bot's DM channel with this user only
    # Group DMs (type 3), and DMs between two members (type 1 without `recipient`).
    recipients: tuple[FakeUser, ...] = ()

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def is_private_channel(self) -> bool:
        """A DM between members or a group DM: the bot is never a recipient (context 2)."""
        return self.type == 3 or (self.type == 1 and self.recipient is None)

    def payload(self, *, bot_overwrite: tuple[int, int] | None = None) -> JSON:
        """The channel object; `bot_overwrite` (bot id, allowed bits) pins the bot's permissions."""
        if self.type == 1:  # the bot's DM, or (without `recipient`) one between two members
            users = self.recipients if self.recipient is None else (self.recipient,)
            assert users, "a DM channel has recipients"
            return {
                "id": str(self.id),
                "type": 1,
                "flags": 0,
                "last_message_id": None,
                "recipients": [user.payload() for user in users],
            }
        if self.type == 3:  # a group DM: the bot is never among its recipients
            return {
                "id": str(self.id),
                "type": 3,
                "flags": 0,
                "name": self.name or None,
                "icon": None,
                "owner_id": str(self.recipients[0].id) if self.recipients else None,
                "last_message_id": None,
                "recipients": [user.payload() for user in self.recipients],
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "nsfw": self.nsfw,
            "topic": None,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "permission_overwrites": [_member_overwrite(*bot_overwrite)] if bot_overwrite else [],
            "last_message_id": None,
        }


def _member_overwrite(member_id: int, allow: int) -> JSON:
    deny = ALL_PERMISSIONS & ~allow
    return {"id": str(member_id), "type": 1, "allow": str(allow), "deny": str(deny)}


@dataclass(eq=False)
class FakeMember:
    user: FakeUser
    guild_id: int
    roles: list[FakeRole] = field(default_factory=list)
    permissions: int | None = None  # explicit override of role-derived permissions
    nick: str | None = None
    joined_at: str = field(default_factory=utcnow_iso)

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return self.user.mention

    def payload(self, *, permissions: int | None = None) -> JSON:
        data: JSON = {
            "user": self.user.payload(),
            "roles": [str(role.id) for role in self.roles],
            "joined_at": self.joined_at,
            "nick": self.nick,
            "avatar": None,
            "flags": 0,
            "deaf": False,
            "mute": False,
            "pending": False,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass(eq=False)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    filesize_limit_override: int | None = None
    bot_permissions: int = BOT_PERMISSIONS
    locale: str = "en-US"
    channels: list[FakeChannel] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: dict[int, FakeMember] = field(default_factory=dict)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[0]

    @property
    def filesize_limit(self) -> int:
        if self.filesize_limit_override is not None:
            return self.filesize_limit_override
        return filesize_limit_for_tier(self.premium_tier)

    def permissions_of(self, member: FakeMember) -> int:
        if member.id == self.owner_id:
            return ALL_PERMISSIONS
        if member.permissions is not None:
            value = member.permissions
        else:
            value = self.everyone.permissions
            for role in member.roles:
                value |= role.permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def bot_permissions_in(self, channel: FakeChannel) -> int:
        value = self.bot_permissions if channel.bot_permissions is None else channel.bot_permissions
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def payload(self, *, members: list[FakeMember], bot_id: int) -> JSON:
        """A GUILD_CREATE payload (channels, roles and the given members)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(self.owner_id),
            "unavailable": False,
            "large": False,
            "member_count": len(self.members),
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "features": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "roles": [role.payload() for role in self.roles],
            "emojis": [],
            "stickers": [],
            "channels": [
                channel.payload(bot_overwrite=(bot_id, self.bot_permissions_in(channel)))
                for channel in self.channels
            ],
            "threads": [],
            "members": [member.payload() for member in members],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "joined_at": utcnow_iso(),
        }


@dataclass(eq=False)
class UploadedFile:
    """One multipart file part as the client sent it."""

    field: str
    filename: str
    content_type: str | None
    data: bytes

    @property
    def index(self) -> int | None:
        match = re.fullmatch(r"files\[(\d+)\]", self.field)
        return int(match.group(1)) if match else None


@dataclass(eq=False)
class FakeAttachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None
    # Images a member uploads (an attachment option) carry their dimensions, as Discord's do.
    width: int | None = None
    height: int | None = None
    # An upload's size as Discord reports it (None: the data's length); lets a test claim more.
    declared_size: int | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.declared_size is None else self.declared_size

    @property
    def spoiler(self) -> bool:
        return self.filename.startswith("SPOILER_")

    def payload(self, attachment_base: str) -> JSON:
        url = f"{attachment_base}/{self.id}/{self.filename}"
        data: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": url,
            "proxy_url": url,
            "content_type": self.content_type or "application/octet-stream",
        }
        if self.description is not None:
            data["description"] = self.description
        if self.width is not None and self.height is not None:
            data["width"], data["height"] = self.width, self.height
        return data


@dataclass(frozen=True)
class MessageEdit:
    """One change to a message: when, through which route, and what was sent."""

    at: float  # the fake's clock (monotonic seconds)
    wall_time: str
    route: str
    payload: JSON
    filenames: tuple[str, ...]


@dataclass(eq=False)
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    created_at: float
    created_wall_time: str
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    flags: int = 0
    allowed_mentions: JSON | None = None
    type: int = 0
    interaction_id: int | None = None
    webhook_id: int | None = None
    source: str = "channel"  # "interaction_response", "followup" or "channel"
    edits: list[MessageEdit] = field(default_factory=list)
    deleted_at: float | None = None
    mention_everyone: bool = False
    mentioned_user_ids: set[int] = field(default_factory=set)
    mentioned_role_ids: set[int] = field(default_factory=set)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while it is a deferred "Bot is thinking…" placeholder."""
        return bool(self.flags & FLAG_LOADING)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def edited_at(self) -> float | None:
        return self.edits[-1].at if self.edits else None

    def walk_components(self) -> Iterator[JSON]:
        stack = list(reversed(self.components))
        while stack:
            component = stack.pop()
            yield component
            for key in ("components", "accessory"):
                child = component.get(key)
                if isinstance(child, list):
                    stack.extend(reversed(child))
                elif isinstance(child, dict):
                    stack.append(child)

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.walk_components() if "custom_id" in c]

    def find_component(self, custom_id: str) -> JSON | None:
        return next((c for c in self.walk_components() if c.get("custom_id") == custom_id), None)

    def attachment(self, filename: str) -> FakeAttachment:
        for attachment in self.attachments:
            if attachment.filename == filename:
                return attachment
        raise KeyError(filename)

    def payload(self, *, attachment_base: str, users: dict[int, FakeUser]) -> JSON:
        data: JSON = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": self.created_wall_time,
            "edited_timestamp": self.edits[-1].wall_time if self.edits else None,
            "tts": False,
            "mention_everyone": self.mention_everyone,
            "mentions": [users[i].payload() for i in sorted(self.mentioned_user_ids) if i in users],
            "mention_roles": [str(i) for i in sorted(self.mentioned_role_ids)],
            "attachments": [a.payload(attachment_base) for a in self.attachments],
            "embeds": self.embeds,
            "components": self.components,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
            data["application_id"] = str(self.webhook_id)
        return data


@dataclass(eq=False)
class RecordedCall:
    """One REST request the fake received (Authorization header left out)."""

    method: str
    path: str
    route: str  # the template, e.g. "/webhooks/{application_id}/{token}/messages/@original"
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    headers: dict[str, str]
    at: float  # the fake's clock when the request arrived
    status: int | None = None
    response: Any = None
    # The client's (host, port): calls sharing it came over one kept-alive connection.
    peer: tuple[str, int] | None = None

    @property
    def filenames(self) -> list[str]:
        return [f.filename for f in self.files]


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def resolve_mentions(content: str, allowed: JSON | None) -> tuple[bool, set[int], set[int]]:
    """Who `content` would ping under `allowed` (Discord's allowed_mentions rules)."""
    parse = {"everyone", "users", "roles"} if allowed is None else set(allowed.get("parse", []))
    allowed_users = {int(i) for i in (allowed or {}).get("users", [])}
    allowed_roles = {int(i) for i in (allowed or {}).get("roles", [])}
    everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
    users = {int(i) for i in _USER_MENTION.findall(content)}
    roles = {int(i) for i in _ROLE_MENTION.findall(content)}
    users = users if "users" in parse else users & allowed_users
    roles = roles if "roles" in parse else roles & allowed_roles
    return everyone, users, roles
