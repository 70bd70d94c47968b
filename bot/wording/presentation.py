"""What members see: embeds for progress, results, failures and refusals. Pure functions.

Progress embeds avoid anything that changes every second (elapsed time and ETA are Discord
relative timestamps, which the client counts down by itself), so a message is edited only when
the phase, the queue position or the progress bar's step changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import discord

from bot.imaging import ImageSize
from bot.jobs.model import JobStage
from bot.jobs.progress import ProgressUpdate

BRAND_COLOUR: Final = discord.Colour(0x7C5CFF)
SUCCESS_COLOUR: Final = discord.Colour(0x2ECC71)
FAILURE_COLOUR: Final = discord.Colour(0xE74C3C)
NOTICE_COLOUR: Final = discord.Colour(0xF1C40F)

BAR_CELLS: Final = 12
PERCENT_STEP: Final = 5  # the shown percent moves in 5 % steps, so edits stay rare
EMBED_DESCRIPTION_LIMIT: Final = 4096
PROMPT_SHOWN_LIMIT: Final = 1500  # leaves room for the rest of the embed inside 6,000 chars

NO_MENTIONS: Final = discord.AllowedMentions.none()

# Titles of the status message once a job has ended (tests and the demo read these too).
RESULT_TITLE: Final = "✅ Here is your image"
WITHHELD_TITLE: Final = "🔞 Image withheld"
FAILURE_TITLE: Final = "❌ No image"
CANCELLED_TITLE: Final = "🛑 Cancelled"
STOPPED_TITLE: Final = "🛑 Stopped"
RESTARTING_TITLE: Final = "🔄 The bot is restarting"
FINAL_TITLES: Final = (RESULT_TITLE, WITHHELD_TITLE, FAILURE_TITLE, CANCELLED_TITLE, STOPPED_TITLE)


def queue_position_title(position: int) -> str:
    return f"⏳ In the queue: position {position}"


def format_prompt(prompt: str, limit: int = PROMPT_SHOWN_LIMIT) -> str:
    """Escape markdown and mentions so a prompt shows as typed and pings nobody, then truncate."""
    text = discord.utils.escape_mentions(discord.utils.escape_markdown(prompt))
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # An odd run of trailing backslashes ends in an escape whose character was cut off; it would
    # escape the ellipsis instead, so drop it (an even run is whole escaped backslashes).
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + "…"


def progress_bar(percent: float, cells: int = BAR_CELLS) -> str:
    filled = max(0, min(cells, round(percent / 100 * cells)))
    return "▰" * filled + "▱" * (cells - filled)


def shown_percent(update: ProgressUpdate) -> int:
    """The percent people see, in steps; never 100 until the job is done."""
    if update.stage is JobStage.DONE:
        return 100
    stepped = int(update.percent // PERCENT_STEP * PERCENT_STEP)
    return max(0, min(99, stepped))


def relative(moment: dt.datetime) -> str:
    return discord.utils.format_dt(moment, "R")


@dataclass(frozen=True)
class JobView:
    """Everything about one job that the embeds show, apart from its progress."""

    prompt: str
    size: ImageSize
    requester_id: int
    requester_name: str
    started_at: dt.datetime  # wall clock, UTC
    # An Edit or Remix of an earlier result: ("Edit of", its jump link), shown on the result.
    parent: tuple[str, str] | None = None


_STAGE_TITLES: Final = {
    JobStage.WAITING: "⏳ Starting",  # with a queue position: "In the queue: position N"
    JobStage.SUBMITTING: "📨 Sending to the image service",
    JobStage.SUBMITTED: "⏳ Queued at the image service",
    JobStage.GENERATING: "🎨 Generating",
    JobStage.DOWNLOADING: "📥 Downloading",
    JobStage.DONE: "✅ Done",
}


def progress_signature(update: ProgressUpdate, now: dt.datetime) -> tuple[object, ...]:
    """What a progress embed depends on: edit only when this changes."""
    eta_bucket = None
    if update.eta_seconds is not None:
        # The ETA is a relative timestamp; move it only when it shifts by 10 s or more.
        eta_bucket = round((now.timestamp() + update.eta_seconds) / 10)
    return (update.stage, update.queue_position, shown_percent(update), eta_bucket)


def progress_embed(job: JobView, update: ProgressUpdate, now: dt.datetime) -> discord.Embed:
    title = _STAGE_TITLES[update.stage]
    if update.stage is JobStage.WAITING and update.queue_position:
        title = queue_position_title(update.queue_position)
    embed = discord.Embed(title=title, description=format_prompt(job.prompt), colour=BRAND_COLOUR)
    percent = shown_percent(update)
    estimate = " (estimate)" if update.percent_is_estimate else ""
    embed.add_field(
        name="Progress", value=f"`{progress_bar(percent)}` {percent} %{estimate}", inline=False
    )
    if update.eta_seconds is not None and update.stage not in (JobStage.DONE, JobStage.WAITING):
        eta = now + dt.timedelta(seconds=max(1.0, update.eta_seconds))
        embed.add_field(name="Ready", value=f"about {relative(eta)}")
    embed.add_field(name="Started", value=relative(job.started_at))
    embed.add_field(name="Size", value=str(job.size))
    embed.set_footer(text=f"Requested by {job.requester_name}")
    return embed


def result_embed(
    job: JobView, *, filename: str, seconds: float, spoiler: bool = False, note: str | None = None
) -> discord.Embed:
    embed = discord.Embed(
        title=RESULT_TITLE, description=format_prompt(job.prompt), colour=SUCCESS_COLOUR
    )
    if not spoiler:
        # A spoilered file must not be previewed by the embed, or the spoiler is pointless.
        embed.set_image(url=f"attachment://{filename}")
    embed.add_field(name="Size", value=str(job.size))
    embed.add_field(name="Took", value=f"{seconds:.1f} s")
    embed.add_field(name="Requested by", value=f"<@{job.requester_id}>")
    if job.parent is not None:
        embed.add_field(name=job.parent[0], value=job.parent[1], inline=False)
    if note:
        embed.add_field(name="Note", value=note, inline=False)
    return embed


EDIT_OF: Final = "Edit of"
REMIX_OF: Final = "Remix of"


def withheld_embed(job: JobView) -> discord.Embed:
    return discord.Embed(
        title=WITHHELD_TITLE,
        description=(
            "The image service flagged this image as possibly NSFW, and this channel is not "
            "age-restricted, so it was not posted."
        ),
        colour=NOTICE_COLOUR,
    ).set_footer(text=f"Requested by {job.requester_name}")


def failure_embed(job: JobView | None, reason: str, *, title: str = FAILURE_TITLE) -> discord.Embed:
    embed = discord.Embed(title=title, description=reason, colour=FAILURE_COLOUR)
    if job is not None:
        embed.add_field(name="Prompt", value=format_prompt(job.prompt, limit=1000), inline=False)
        embed.set_footer(text=f"Requested by {job.requester_name}")
    return embed


def cancelled_embed(job: JobView, by_name: str) -> discord.Embed:
    return failure_embed(
        job,
        f"Cancelled by {discord.utils.escape_markdown(by_name)}. "
        "(If the image service had already started, the job may still be billed.)",
        title=CANCELLED_TITLE,
    )


def interrupted_embed(job: JobView) -> discord.Embed:
    return failure_embed(
        job,
        "The bot restarted before this image was ready. Please try again.",
        title=STOPPED_TITLE,
    )


RESTARTING_TEXT: Final = "The bot is restarting; your image will follow."
STOPPED_BY_RESTART_TEXT: Final = "Stopped by a restart — not counted. Please try again."


def restarting_embed(job: JobView) -> discord.Embed:
    """Shown while the bot restarts with this job journaled: it resumes on the next start."""
    embed = discord.Embed(
        title=RESTARTING_TITLE, description=f"{format_prompt(job.prompt)}\n\n{RESTARTING_TEXT}"
    )
    embed.set_footer(text=f"{job.size.wire} · requested by {job.requester_name}")
    return embed


def stopped_by_restart_embed(job: JobView) -> discord.Embed:
    """A job that could not be taken back after a restart (it is refunded)."""
    return failure_embed(job, STOPPED_BY_RESTART_TEXT, title=STOPPED_TITLE)


def image_ready_ping(requester_id: int) -> str:
    """Content of a late result posted in the channel (the only mention it allows)."""
    return f"<@{requester_id}>, your image is ready."


def refusal_text(reason: str, retry_at: dt.datetime | None = None) -> str:
    """One ephemeral line: why, and when to try again."""
    if retry_at is None:
        return reason
    return f"{reason} You can try again {relative(retry_at)}."
