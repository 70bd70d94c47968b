"""The one message a job keeps current, reached through a live interaction or a stored token.

A job started in this process edits its status message through the `discord.Interaction`. A
job taken back after a restart has no interaction object, only what the journal kept: the
application id and the interaction token, from which `discord.Webhook.partial(..., client=bot)`
edits the same `@original` message. Either way `replace()` is the single place with the
15-minute fallback: past the token's lifetime the final embed (and image) is posted in the
channel instead, mentioning only the requester.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import discord

from bot.interactions import presentation as ui

log = logging.getLogger("bot.interactions.generation")

# Discord answers 401 / 50027 once an interaction token is older than 15 minutes.
INVALID_WEBHOOK_TOKEN: Final = 50027
# 404 / 10008: the status message is gone (e.g. a moderator deleted it mid-job).
UNKNOWN_MESSAGE: Final = 10008
TOKEN_LIFETIME: Final = dt.timedelta(minutes=15)
# Stop trusting a stored token a little before Discord does (clock skew, slow requests).
TOKEN_MARGIN: Final = dt.timedelta(seconds=30)
# The webhook route for an interaction's original response.
ORIGINAL: Final = "@original"

Edit = Callable[..., Awaitable[Any]]
ChannelLookup = Callable[[], "discord.abc.Messageable | None"]


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
    ) -> None:
        self._edit = edit  # None: no usable token (it expired and was forgotten)
        self._channel = channel
        self.requester_id = requester_id
        self.filesize_limit = filesize_limit
        self._valid_until = token_valid_until

    @classmethod
    def of_interaction(cls, interaction: discord.Interaction) -> StatusMessage:
        return cls(
            edit=interaction.edit_original_response,
            channel=lambda: _messageable(interaction.channel),
            requester_id=interaction.user.id,
            filesize_limit=interaction.filesize_limit,
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
    ) -> StatusMessage:
        """The status message of a job taken back after a restart (the token stays inside the
        webhook object; it is never logged)."""
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

        valid_until = None if interaction_at is None else (
            interaction_at + TOKEN_LIFETIME - TOKEN_MARGIN)
        return cls(
            edit=edit,
            channel=channel,
            requester_id=requester_id,
            filesize_limit=filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
            token_valid_until=valid_until,
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
        image: tuple[bytes, str, bool] | None = None,
    ) -> discord.Message | None:
        """Edit the status message into its final form (`image` = bytes, filename, spoiler);
        returns the message that shows it (None: the status message was deleted).

        Past the interaction token's 15 minutes the message can no longer be edited; then the
        same embed (and image) is posted in the channel instead, pinging only the requester, so
        nobody is left waiting. This is the one place that fallback lives.
        """

        def attachment() -> list[discord.File]:
            if image is None:
                return []
            data, filename, spoiler = image
            return [discord.File(io.BytesIO(data), filename=filename, spoiler=spoiler)]

        try:
            edited: discord.Message = await self.edit(
                embed=embed, view=view, attachments=attachment(), allowed_mentions=ui.NO_MENTIONS
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
        channel = self._channel()
        if channel is None:
            raise UnknownChannel("interaction token expired and the channel is unknown")
        return await channel.send(
            content=ping,
            embed=embed,
            files=attachment(),
            view=view or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(self.requester_id)]
            ),
        )


class _ExpiredResponse:
    """Just enough of an aiohttp response for `discord.HTTPException`."""

    status = 401
    reason = "Unauthorized"


def _expired() -> discord.HTTPException:
    return discord.HTTPException(
        cast(Any, _ExpiredResponse()),
        {"code": INVALID_WEBHOOK_TOKEN, "message": "Invalid Webhook Token (expired, not tried)"},
    )


def _messageable(channel: object) -> discord.abc.Messageable | None:
    return channel if isinstance(channel, discord.abc.Messageable) else None
