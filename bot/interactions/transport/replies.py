"""Short ephemeral replies, and the one way unexpected errors reach a member (with an error id)."""

from __future__ import annotations

import logging
from typing import Any, Final

import discord

from bot.interactions.transport import acknowledge
from bot.interactions.transport.embeds import NO_MENTIONS
from bot.storage.reliability.outage import OutageLog, is_database_unavailable
from bot.wording.messages import DATABASE_UNAVAILABLE, describe_with_id, new_error_id

log = logging.getLogger(__name__)

# 404 / 10062: the interaction can no longer be answered (Discord's 3 s window passed, or it was
# answered elsewhere). Expected under load: one line, no traceback, no second attempt.
UNKNOWN_INTERACTION: Final = 10062


def interaction_expired(error: BaseException) -> bool:
    return isinstance(error, discord.NotFound) and error.code == UNKNOWN_INTERACTION


async def reply_ephemeral(
    interaction: discord.Interaction,
    text: str | None = None,
    *,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
) -> None:
    """Answer only the member, pinging nobody, whether or not the interaction was already
    acknowledged. The one way the bot sends an ephemeral reply."""
    extra: dict[str, Any] = {}
    if embed is not None:
        extra["embed"] = embed
    if view is not None:
        extra["view"] = view
    await acknowledge.settle(interaction)  # a slow command may be being deferred right now
    if interaction.response.is_done():
        await interaction.followup.send(
            text if text is not None else discord.utils.MISSING,
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
            **extra,
        )
    else:
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=NO_MENTIONS, **extra
        )


async def report_error(interaction: discord.Interaction, error: BaseException, where: str) -> str:
    """Log `error` with a fresh error id and tell the member a friendly line quoting it.

    An unreachable (or stalled) database is not a bug: the member hears "the bot's database is
    unavailable, try again in a minute" and the log gets one line per outage, not per request.
    """
    if is_database_unavailable(error):
        outage = getattr(interaction.client, "database_outage", None)
        if isinstance(outage, OutageLog):
            outage.failed(error, where)
        else:
            log.warning("database unavailable in %s (%s)", where, type(error).__name__)
        try:
            await reply_ephemeral(interaction, DATABASE_UNAVAILABLE)
        except discord.HTTPException:
            log.info("could not tell the member the database is unavailable", exc_info=True)
        return ""
    error_id = new_error_id()
    if interaction_expired(error):
        log.warning("%s: interaction %s expired before it was answered (10062) [error id %s]",
                    where, interaction.id, error_id)
        return error_id  # answering would fail the same way
    log.error("unhandled error in %s [error id %s]", where, error_id, exc_info=error)
    text = describe_with_id(error, error_id)
    try:
        await reply_ephemeral(interaction, text)
    except discord.HTTPException as exc:
        log.warning("could not report error %s to the member: %s", error_id, exc)
    return error_id
