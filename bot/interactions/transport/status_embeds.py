"""The status message's embeds: each card of `bot.wording.presentation` as a `discord.Embed`.

The job's code words its status message through this module (`... import status_embeds as
ui`), so it also passes on the few plain names that code reads beside the embeds.
"""

from __future__ import annotations

import datetime as dt

import discord

from bot.interactions.transport.embeds import NO_MENTIONS, to_embed
from bot.jobs.progress import ProgressUpdate
from bot.wording import presentation as cards
from bot.wording.presentation import JobView, image_ready_ping, progress_signature

__all__ = [
    "NO_MENTIONS",
    "JobView",
    "cancelled_embed",
    "failure_embed",
    "image_ready_ping",
    "interrupted_embed",
    "progress_embed",
    "progress_signature",
    "restarting_embed",
    "result_embed",
    "stopped_by_restart_embed",
    "withheld_embed",
]


def progress_embed(job: JobView, update: ProgressUpdate, now: dt.datetime) -> discord.Embed:
    return to_embed(cards.progress_card(job, update, now))


def result_embed(
    job: JobView, *, filename: str, seconds: float, spoiler: bool = False, note: str | None = None
) -> discord.Embed:
    return to_embed(
        cards.result_card(job, filename=filename, seconds=seconds, spoiler=spoiler, note=note)
    )


def withheld_embed(job: JobView) -> discord.Embed:
    return to_embed(cards.withheld_card(job))


def failure_embed(
    job: JobView | None, reason: str, *, title: str = cards.FAILURE_TITLE
) -> discord.Embed:
    return to_embed(cards.failure_card(job, reason, title=title))


def cancelled_embed(job: JobView, by_name: str) -> discord.Embed:
    return to_embed(cards.cancelled_card(job, by_name))


def interrupted_embed(job: JobView) -> discord.Embed:
    return to_embed(cards.interrupted_card(job))


def restarting_embed(job: JobView) -> discord.Embed:
    return to_embed(cards.restarting_card(job))


def stopped_by_restart_embed(job: JobView) -> discord.Embed:
    return to_embed(cards.stopped_by_restart_card(job))
