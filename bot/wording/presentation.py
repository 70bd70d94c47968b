"""What members see: cards for progress, results, failures and refusals. Pure functions.

Progress cards avoid anything that changes every second (elapsed time and ETA are Discord
relative timestamps, which the client counts down by itself), so a message is edited only when
the phase, the queue position or the progress bar's step changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from bot.imaging import ImageSize
from bot.jobs.model import JobStage
from bot.jobs.progress import ProgressUpdate
from bot.wording.cards import Card, Field
from bot.wording.markup import escape_markdown, escape_mentions, relative_time

BRAND_COLOUR: Final = 0x7C5CFF
SUCCESS_COLOUR: Final = 0x2ECC71
FAILURE_COLOUR: Final = 0xE74C3C
NOTICE_COLOUR: Final = 0xF1C40F

BAR_CELLS: Final = 12
PERCENT_STEP: Final = 5  # the shown percent moves in 5 % steps, so edits stay rare
EMBED_DESCRIPTION_LIMIT: Final = 4096
PROMPT_SHOWN_LIMIT: Final = 1500  # leaves room for the rest of the card inside 6,000 chars

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
    text = escape_mentions(escape_markdown(prompt))
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


@dataclass(frozen=True)
class JobView:
    """Everything about one job that the cards show, apart from its progress."""

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
# The same stages in one word each, for the terminal's progress bar (`bot.terminal.generate`).
STAGE_LABELS: Final = {
    JobStage.WAITING: "waiting",
    JobStage.SUBMITTING: "submitting",
    JobStage.SUBMITTED: "queued",
    JobStage.GENERATING: "generating",
    JobStage.DOWNLOADING: "downloading",
    JobStage.DONE: "done",
}


def progress_signature(update: ProgressUpdate, now: dt.datetime) -> tuple[object, ...]:
    """What a progress card depends on: edit only when this changes."""
    eta_bucket = None
    if update.eta_seconds is not None:
        # The ETA is a relative timestamp; move it only when it shifts by 10 s or more.
        eta_bucket = round((now.timestamp() + update.eta_seconds) / 10)
    return (update.stage, update.queue_position, shown_percent(update), eta_bucket)


def progress_card(job: JobView, update: ProgressUpdate, now: dt.datetime) -> Card:
    title = _STAGE_TITLES[update.stage]
    if update.stage is JobStage.WAITING and update.queue_position:
        title = queue_position_title(update.queue_position)
    percent = shown_percent(update)
    estimate = " (estimate)" if update.percent_is_estimate else ""
    fields = [
        Field("Progress", f"`{progress_bar(percent)}` {percent} %{estimate}", inline=False)
    ]
    if update.eta_seconds is not None and update.stage not in (JobStage.DONE, JobStage.WAITING):
        eta = now + dt.timedelta(seconds=max(1.0, update.eta_seconds))
        fields.append(Field("Ready", f"about {relative_time(eta)}"))
    fields.append(Field("Started", relative_time(job.started_at)))
    fields.append(Field("Size", str(job.size)))
    return Card(
        title=title,
        description=format_prompt(job.prompt),
        colour=BRAND_COLOUR,
        fields=tuple(fields),
        footer=f"Requested by {job.requester_name}",
    )


def result_card(
    job: JobView, *, filename: str, seconds: float, spoiler: bool = False, note: str | None = None
) -> Card:
    fields = [
        Field("Size", str(job.size)),
        Field("Took", f"{seconds:.1f} s"),
        Field("Requested by", f"<@{job.requester_id}>"),
    ]
    if job.parent is not None:
        fields.append(Field(job.parent[0], job.parent[1], inline=False))
    if note:
        fields.append(Field("Note", note, inline=False))
    return Card(
        title=RESULT_TITLE,
        description=format_prompt(job.prompt),
        colour=SUCCESS_COLOUR,
        fields=tuple(fields),
        # A spoilered file must not be previewed by the card, or the spoiler is pointless.
        image=None if spoiler else filename,
    )


EDIT_OF: Final = "Edit of"
REMIX_OF: Final = "Remix of"


def withheld_card(job: JobView) -> Card:
    return Card(
        title=WITHHELD_TITLE,
        description=(
            "The image service flagged this image as possibly NSFW, and this channel is not "
            "age-restricted, so it was not posted."
        ),
        colour=NOTICE_COLOUR,
        footer=f"Requested by {job.requester_name}",
    )


def failure_card(job: JobView | None, reason: str, *, title: str = FAILURE_TITLE) -> Card:
    if job is None:
        return Card(title=title, description=reason, colour=FAILURE_COLOUR)
    return Card(
        title=title,
        description=reason,
        colour=FAILURE_COLOUR,
        fields=(Field("Prompt", format_prompt(job.prompt, limit=1000), inline=False),),
        footer=f"Requested by {job.requester_name}",
    )


CANCELLED_COUNTS_TEXT: Final = "Already sent: this one counts."
CANCELLED_REFUNDED_TEXT: Final = "Not sent yet: this one doesn't count."


def cancelled_card(job: JobView, by_name: str, *, counted: bool) -> Card:
    """`counted`: the request had already gone to the image service, which bills it."""
    return failure_card(
        job,
        f"Cancelled by {escape_markdown(by_name)}. "
        f"{CANCELLED_COUNTS_TEXT if counted else CANCELLED_REFUNDED_TEXT}",
        title=CANCELLED_TITLE,
    )


def interrupted_card(job: JobView) -> Card:
    return failure_card(
        job,
        "The bot restarted before this image was ready. Please try again.",
        title=STOPPED_TITLE,
    )


RESTARTING_TEXT: Final = "The bot is restarting; your image will follow."
STOPPED_BY_RESTART_TEXT: Final = "Stopped by a restart — not counted. Please try again."


def restarting_card(job: JobView) -> Card:
    """Shown while the bot restarts with this job journaled: it resumes on the next start."""
    return Card(
        title=RESTARTING_TITLE,
        description=f"{format_prompt(job.prompt)}\n\n{RESTARTING_TEXT}",
        footer=f"{job.size.wire} · requested by {job.requester_name}",
    )


def stopped_by_restart_card(job: JobView) -> Card:
    """A job that could not be taken back after a restart (it is refunded)."""
    return failure_card(job, STOPPED_BY_RESTART_TEXT, title=STOPPED_TITLE)


def image_ready_ping(requester_id: int) -> str:
    """Content of a late result posted in the channel (the only mention it allows)."""
    return f"<@{requester_id}>, your image is ready."


def refusal_text(reason: str, retry_at: dt.datetime | None = None) -> str:
    """One ephemeral line: why, and when to try again."""
    if retry_at is None:
        return reason
    return f"{reason} You can try again {relative_time(retry_at)}."
