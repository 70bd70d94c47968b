"""The one message a job keeps current, reached through a live interaction or a stored token.

A job started in this process edits its status message through the `discord.Interaction`. A
job taken back after a restart has no interaction object, only what the journal kept: the
application id and the interaction token, from which `discord.Webhook.partial(..., client=bot)`
edits the same `@original` message. Either way `replace()` is the single place with the
15-minute fallback: past the token's lifetime the final embed (and image) is posted in the
channel instead, mentioning only the requester — where the bot can post. Where it cannot (the
user-installed app in a server without the bot, a DM between members, a group DM, or a channel
that refuses the bot's post) it can only answer through the interaction, so a late outcome goes
to the requester by DM, and if their DMs are closed it is kept for their next command (`keep`);
a private context's outcome is never posted in a channel.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import discord

from bot.interactions.transport.attachments import image_file, releasing
from bot.interactions.transport.embeds import NO_MENTIONS
from bot.jobs.model import ImageFile

log = logging.getLogger(__name__)

# Discord answers 401 / 50027 once an interaction token is older than 15 minutes.
INVALID_WEBHOOK_TOKEN: Final = 50027
# 404 / 10008: the status message is gone (e.g. a moderator deleted it mid-job).
UNKNOWN_MESSAGE: Final = 10008
TOKEN_LIFETIME: Final = dt.timedelta(minutes=15)
# Stop trusting a stored token a little before Discord does (clock skew, slow requests).
TOKEN_MARGIN: Final = dt.timedelta(seconds=30)
# The webhook route for an interaction's original response.
ORIGINAL: Final = "@original"

# 403 / 50007: the member does not accept DMs from the bot.
CANNOT_MESSAGE_USER: Final = 50007
FORBIDDEN: Final = 403
# 403 / 50001 Missing Access, 50013 Missing Permissions: the bot may not post in that channel.
CANNOT_POST_HERE: Final = frozenset({50001, 50013})

Edit = Callable[..., Awaitable[Any]]
ChannelLookup = Callable[[], "discord.abc.Messageable | None"]
OpenDm = Callable[[], Awaitable["discord.abc.Messageable"]]
# Keeps an outcome for the member's next command: (user id, embed JSON, image).
Keep = Callable[[int, str, ImageFile | None], Awaitable[None]]


class LateDelivery(enum.Enum):
    """Where an outcome goes once the interaction token has expired."""

    CHANNEL = "channel"  # the bot is present: post in the channel, pinging the requester
    DIRECT_MESSAGE = "dm"  # interaction-only context: DM the requester (kept if DMs are closed)


def token_expired(exc: discord.HTTPException) -> bool:
    """The interaction token outlived its 15 minutes: edits through it will never work again."""
    return exc.code == INVALID_WEBHOOK_TOKEN


def message_deleted(exc: discord.HTTPException) -> bool:
    """Unknown Message: a moderator (or the member) deleted the status message."""
    return exc.code == UNKNOWN_MESSAGE


class UnknownChannel(RuntimeError):
    """A late outcome cannot be posted: discord.py does not know the interaction's channel."""


class StatusMessage:
    """Edit a job's status message, and replace it with the outcome (see module docstring)."""

    def __init__(
        self,
        *,
        edit: Edit | None,
        channel: ChannelLookup,
        requester_id: int,
        filesize_limit: int,
        token_valid_until: dt.datetime | None = None,
        late: LateDelivery = LateDelivery.CHANNEL,
        open_dm: OpenDm | None = None,
        keep: Keep | None = None,
    ) -> None:
        self._edit = edit  # None: no usable token (it expired and was forgotten)
        self._channel = channel
        self.late = late
        self._open_dm = open_dm
        self._keep = keep
        self.requester_id = requester_id
        self.filesize_limit = filesize_limit
        self._valid_until = token_valid_until

    @classmethod
    def of_interaction(
        cls,
        interaction: discord.Interaction,
        *,
        bot_present: bool = True,
        keep: Keep | None = None,
    ) -> StatusMessage:
        """`bot_present`: False where the bot can answer only through the interaction."""
        user = interaction.user
        return cls(
            edit=interaction.edit_original_response,
            channel=lambda: _messageable(interaction.channel) if bot_present else None,
            requester_id=user.id,
            filesize_limit=interaction.filesize_limit,
            late=LateDelivery.CHANNEL if bot_present else LateDelivery.DIRECT_MESSAGE,
            open_dm=user.create_dm,
            keep=keep,
        )

    @classmethod
    def from_token(
        cls,
        client: discord.Client,
        *,
        application_id: int | None,
        token: str | None,
        interaction_at: dt.datetime | None,
        channel_id: int,
        guild_id: int | None,
        requester_id: int,
        filesize_limit: int | None,
        keep: Keep | None = None,
    ) -> StatusMessage:
        """The status message of a job taken back after a restart (the token stays inside the
        webhook object; it is never logged). Channel 0: a job from where the bot is not
        present, whose late outcome goes to the requester by DM."""
        edit: Edit | None = None
        if application_id and token:
            webhook = discord.Webhook.partial(application_id, token, client=client)

            async def edit_original(**fields: Any) -> discord.WebhookMessage:
                return await webhook.edit_message(cast(int, ORIGINAL), **fields)

            edit = edit_original

        def channel() -> discord.abc.Messageable | None:
            found = client.get_channel(channel_id)
            if isinstance(found, discord.abc.Messageable):
                return found
            return client.get_partial_messageable(channel_id, guild_id=guild_id)

        async def open_dm() -> discord.abc.Messageable:
            user = client.get_user(requester_id) or await client.fetch_user(requester_id)
            return await user.create_dm()

        valid_until = None if interaction_at is None else (
            interaction_at + TOKEN_LIFETIME - TOKEN_MARGIN)
        return cls(
            edit=edit,
            channel=channel,
            requester_id=requester_id,
            filesize_limit=filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
            token_valid_until=valid_until,
            late=LateDelivery.DIRECT_MESSAGE if channel_id == 0 else LateDelivery.CHANNEL,
            open_dm=open_dm,
            keep=keep,
        )

    @property
    def token_usable(self) -> bool:
        if self._edit is None:
            return False
        return self._valid_until is None or dt.datetime.now(dt.UTC) < self._valid_until

    async def edit(self, **fields: Any) -> Any:
        """Edit the status message (raises `discord.HTTPException` as discord.py does; an
        unusable token raises the same 401/50027 Discord would)."""
        if self._edit is None or not self.token_usable:
            raise _expired()
        return await self._edit(**fields)

    async def replace(
        self,
        *,
        embed: discord.Embed,
        view: discord.ui.View | None,
        ping: str,
        image: ImageFile | None = None,
    ) -> discord.Message | None:
        """Edit the status message into its final form (with `image` attached, if given);
        returns the message that shows it (None: the status message was deleted).

        Past the interaction token's 15 minutes the message can no longer be edited; then the
        same embed (and image) is posted in the channel instead, pinging only the requester, so
        nobody is left waiting; where the bot cannot post (not present, or the channel refuses
        it) it is sent by DM, or kept for the member's next command if their DMs are closed
        (then None is returned). This is the one place that fallback lives.
        """

        try:
            with releasing(_attachment(image)) as files:
                edited: discord.Message = await self.edit(
                    embed=embed, view=view, attachments=files, allowed_mentions=NO_MENTIONS
                )
            return edited
        except discord.HTTPException as exc:
            if message_deleted(exc):
                # Deleted by a moderator (or the member): the outcome is not posted elsewhere.
                # A result still counts: the task was made and billed.
                log.info("the status message was deleted; outcome not shown")
                return None
            if not token_expired(exc):
                raise
        if self.late is LateDelivery.DIRECT_MESSAGE:
            return await self._send_privately(embed, view, image)
        channel = self._channel()
        if channel is None:
            log.info("late outcome: the channel is unknown; sending it privately")
            return await self._send_privately(embed, view, image)
        try:
            with releasing(_attachment(image)) as files:
                return await channel.send(
                    content=ping,
                    embed=embed,
                    files=files,
                    view=view or discord.utils.MISSING,
                    allowed_mentions=discord.AllowedMentions(
                        everyone=False, roles=False, users=[discord.Object(self.requester_id)]
                    ),
                )
        except discord.HTTPException as exc:
            if exc.code not in CANNOT_POST_HERE:
                raise
            # The bot is no longer (or never was) able to post there: removed from the server,
            # its permissions taken away. The outcome still reaches the member.
            log.info("late outcome refused in the channel (%s); sending it privately", exc.code)
        return await self._send_privately(embed, view, image)

    async def _send_privately(
        self,
        embed: discord.Embed,
        view: discord.ui.View | None,
        image: ImageFile | None,
    ) -> discord.Message | None:
        """The late outcome of an interaction-only context: by DM, else kept (never a channel)."""
        files = _attachment(image)
        try:
            if self._open_dm is None:
                raise UnknownChannel("no way to reach the requester by DM")
            dm = await self._open_dm()
            with releasing(files):
                return await dm.send(
                    embed=embed, files=files, view=view or discord.utils.MISSING,
                    allowed_mentions=NO_MENTIONS,
                )
        except discord.HTTPException as exc:
            # Closed DMs (50007), or any other refusal to open or post in the DM: keep it.
            if exc.code != CANNOT_MESSAGE_USER and exc.status != FORBIDDEN:
                raise
        if self._keep is None:
            log.warning("late outcome for a member with closed DMs could not be kept")
            return None
        log.info("requester's DMs are closed; outcome kept for their next command")
        await self._keep(self.requester_id, json.dumps(embed.to_dict()), image)
        return None


class _ExpiredResponse:
    """Just enough of an aiohttp response for `discord.HTTPException`."""

    status = 401
    reason = "Unauthorized"


def _expired() -> discord.HTTPException:
    return discord.HTTPException(
        cast(Any, _ExpiredResponse()),
        {"code": INVALID_WEBHOOK_TOKEN, "message": "Invalid Webhook Token (expired, not tried)"},
    )


def _attachment(image: ImageFile | None) -> list[discord.File]:
    return [] if image is None else [image_file(image.data, image.filename, spoiler=image.spoiler)]


def _messageable(channel: object) -> discord.abc.Messageable | None:
    return channel if isinstance(channel, discord.abc.Messageable) else None
