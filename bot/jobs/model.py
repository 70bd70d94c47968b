"""What a job is, in words every room shares: its kind, request, stage, ledger status and image."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from bot.imaging import ImageSize


class JobKind(enum.StrEnum):
    GENERATE = "generate"  # /imagine, Re-roll
    EDIT = "edit"          # Edit on a result, /imagine-edit on an upload
    REMIX = "remix"        # Remix on a result: a new generation from an edited prompt

    @property
    def is_edit(self) -> bool:
        """Whether the job runs Qwen-Image-Edit (an input image) rather than txt2img."""
        return self is JobKind.EDIT


DIRECT_MESSAGES: Final = 0  # the ledger's guild (and channel) id for jobs outside a server


class Install(enum.StrEnum):
    """How the bot came to be asked, which decides whose rules apply."""

    GUILD = "guild"  # in a server the bot is a member of: that server's rules
    DIRECT = "direct"  # the bot's own DM: bot-wide rules
    # The app installed to a member's account, used where the bot is not present (another
    # server, a group DM): bot-wide rules plus the host's user-install switch and daily cap.
    USER = "user"


@dataclass(frozen=True)
class JobRequest:
    """Someone asked for an image: who, where and what. Admitted, it becomes the job's request."""

    guild_id: int | None  # None: no server's rules apply (a direct message, a user install)
    channel_id: int | None
    user_id: int
    prompt: str
    size: ImageSize
    user_name: str = ""  # shown on the job's messages
    role_ids: tuple[int, ...] = ()
    # Members with Manage Server are never locked out: bans and the channel allow-list don't
    # apply to them (limits and blocked terms still do).
    is_moderator: bool = False
    channel_is_nsfw: bool = False  # flagged images may be shown here as they are
    parent_channel_id: int | None = None  # a thread's channel, for the allow-list
    reroll_of: int | None = None  # the job re-rolled; a re-roll counts like any other request
    images: int = 1
    kind: JobKind = JobKind.GENERATE  # an edit or remix counts as one image like any job
    # Its estimated price (`pricing.cost_microusd`); None: `images` at the generation price.
    cost_microusd: int | None = None
    install: Install = Install.GUILD


class JobStatus(enum.StrEnum):
    RESERVED = "reserved"  # admitted, not yet at Novita
    SUBMITTED = "submitted"  # Novita has the task
    SUCCEEDED = "succeeded"  # counts
    CANCELLED = "cancelled"  # counts (Novita bills a submitted task)
    FAILED = "failed"  # failed upstream: refunded
    REFUNDED = "refunded"  # stopped before it reached Novita (refused, or cancelled early)


# How a job can end: what `finish` accepts.
JobOutcome = Literal[
    JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.REFUNDED
]


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """Discord's shard for a guild (direct messages go to shard 0)."""
    if not guild_id or shard_count <= 1:
        return 0
    return (guild_id >> 22) % shard_count


class JobStage(enum.StrEnum):
    """Where a job is in its life: one vocabulary for the journal, progress and the terminal.

    The journal records `WAITING`, `SUBMITTING`, `SUBMITTED` and `DELIVERED` (a restart acts
    on them: `WAITING` may be submitted again, `SUBMITTING` never, `SUBMITTED` is polled again,
    `DELIVERED` is settled without touching Discord); progress reports the others too.
    Novita's own task statuses are `bot.novita.models.TaskStatus`, the wire type.
    """

    WAITING = "waiting"  # admitted, waiting here (rate limit or fair queue): may be submitted
    SUBMITTING = "submitting"  # a submit request may be in flight: never repeated
    SUBMITTED = "submitted"  # Novita has the task, waiting for one of its workers
    GENERATING = "generating"  # Novita reports PROCESSING (or a status it does not name)
    DOWNLOADING = "downloading"
    DONE = "done"
    DELIVERED = "delivered"  # the result is posted: never posted again, only its end recorded


@dataclass(frozen=True)
class ImageFile:
    """A finished image as a message attaches it (fitted to the upload limit, named, and shown
    behind a spoiler or not); also what is kept for a member who could not be reached."""

    data: bytes
    filename: str
    spoiler: bool = False
