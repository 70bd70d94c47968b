"""How a job shows on Discord: the one status message kept current (throttled progress), then
the result (recompressed, spoilered or withheld), a friendly failure or a notice.

`DiscordJobDisplay` is the Discord side of `bot.jobs.active.JobDisplay`; `JobDisplays` builds
one per job (from the live interaction, or from a journal row after a restart) and holds what
they share: the button rows, the bot-wide progress edit budget, and the record of where results
were posted (for the member's history).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import discord

from bot.interactions.transport.delivery import (
    MESSAGE_EDIT_WINDOW,
    EditBudget,
    ImageTooLargeForDiscord,
    ThrottledProgress,
    fit_to_limit,
)
from bot.interactions.transport.embeds import NO_MENTIONS, to_embed
from bot.interactions.transport.status_message import (
    TOKEN_LIFETIME,
    Keep,
    StatusMessage,
    UnknownChannel,
    message_deleted,
    token_expired,
)
from bot.jobs.model import ImageFile, JobKind, JobOutcome, JobRequest, JobStatus
from bot.jobs.progress import JobResult, ProgressUpdate
from bot.limits.admission import AdmissionService
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.repositories.guild_settings import NsfwPolicy
from bot.storage.repositories.journal import JournalEntry
from bot.storage.repositories.member_history import MemberHistory
from bot.wording import presentation as ui
from bot.wording.messages import describe_error, describe_with_id, new_error_id

log = logging.getLogger(__name__)

ViewFactory = Callable[[int, int], discord.ui.View]


@dataclass(frozen=True)
class Views:
    """Builds the button rows; given by the composition root so `bot/` stays UI-agnostic."""

    running: ViewFactory  # (job_id, owner_id) -> view with Cancel
    finished: ViewFactory  # (job_id, owner_id) -> view with Re-roll and Delete


class JobDisplays:
    """Builds each job's Discord display, and holds what every display of this bot shares."""

    def __init__(
        self,
        client: discord.Client,
        views: Views,
        admissions: AdmissionService,
        outbox: WriteOutbox,
        member_history: MemberHistory,  # where each result was posted
        keep: Keep,  # a late outcome that reached nobody, kept for the member's next command
        *,
        progress_edit_interval: float = 2.0,
        progress_edits_per_second: float = 0.0,
    ) -> None:
        self.client = client
        self.views = views
        self.admissions = admissions
        self.outbox = outbox
        self.member_history = member_history
        self.keep = keep
        self.progress_edit_interval = progress_edit_interval
        self.edit_budget = EditBudget(progress_edits_per_second)  # shared by every job
        # Discord's per-message edit window; progress keeps one of its edits for the result.
        self.message_edit_window = MESSAGE_EDIT_WINDOW
        self.token_lifetime = TOKEN_LIFETIME
        self._result_writes: set[asyncio.Future[bool]] = set()

    def for_interaction(
        self,
        job_id: int,
        request: JobRequest,
        interaction: discord.Interaction,
        *,
        bot_present: bool,
        parent: tuple[str, str] | None = None,
    ) -> DiscordJobDisplay:
        """The display of a job started now, edited through its live interaction."""
        view = _job_view(request, dt.datetime.now(dt.UTC), parent)
        status = StatusMessage.of_interaction(
            interaction, bot_present=bot_present, keep=self.keep)
        return DiscordJobDisplay(self, job_id, request, view, status)

    def rebuild(
        self, entry: JournalEntry, request: JobRequest, started_at: dt.datetime
    ) -> DiscordJobDisplay:
        """The display of a job taken back after a restart, through its stored token."""
        parent = None
        if entry.parent_url is not None:  # the "Edit of" / "Remix of" link it showed before
            label = ui.REMIX_OF if request.kind is JobKind.REMIX else ui.EDIT_OF
            parent = (label, entry.parent_url)
        view = _job_view(request, started_at, parent)
        status = StatusMessage.from_token(
            self.client,
            application_id=entry.application_id,
            token=entry.interaction_token,
            interaction_at=entry.interaction_at,
            channel_id=entry.channel_id,
            guild_id=entry.guild_id,
            requester_id=entry.user_id,
            filesize_limit=entry.filesize_limit,
            keep=self.keep,  # its late outcome is kept like any other job's
        )
        return DiscordJobDisplay(self, entry.job_id, request, view, status)

    def note_result(self, job_id: int, posted: discord.Message | None) -> None:
        """Remember where the image went (history links to it) through the write outbox: in the
        background, retried through a database blip, never turning a delivered job into a
        failed, refunded one."""
        if posted is None:
            return
        member_history, channel_id, message_id = self.member_history, posted.channel.id, posted.id
        write = self.outbox.put(
            f"result message of job {job_id}",
            lambda: member_history.record_result_message(job_id, channel_id, message_id),
        )
        self._result_writes.add(write)
        write.add_done_callback(self._result_writes.discard)

    async def results_recorded(self) -> None:
        """Wait until every delivered result so far has its message recorded."""
        if self._result_writes:
            await asyncio.gather(*self._result_writes, return_exceptions=True)


class DiscordJobDisplay:
    """One job's status message: progress edits (throttled, one edit kept for the result), then
    its final form (`StatusMessage.replace`, the one place with the 15-minute fallback)."""

    def __init__(
        self,
        displays: JobDisplays,
        job_id: int,
        request: JobRequest,
        view: ui.JobView,
        status: StatusMessage,
    ) -> None:
        self._displays = displays
        self.job_id = job_id
        self.request = request
        self.view = view
        self.status = status
        self._running_view = displays.views.running(job_id, request.user_id)
        self._progress_stopped = False  # the status message can no longer be edited
        self._reporter: ThrottledProgress[ProgressUpdate] = ThrottledProgress(
            self._edit_progress,
            lambda u: ui.progress_signature(u, dt.datetime.now(dt.UTC)),
            displays.progress_edit_interval,
            budget=displays.edit_budget,
            edit_window=displays.message_edit_window,
        )

    # ---- progress ------------------------------------------------------------------------------

    async def progress(self, update: ProgressUpdate) -> None:
        await self._reporter.offer(update)

    async def end_progress(self) -> None:
        await self._reporter.close()

    async def first_form(self, update: ProgressUpdate) -> None:
        """Give the "thinking…" placeholder its first progress form at once (unthrottled, no
        buttons), so messages sent after it follow it (raises what discord.py raises)."""
        await self.status.edit(
            embed=to_embed(ui.progress_card(self.view, update, dt.datetime.now(dt.UTC))),
            allowed_mentions=NO_MENTIONS,
        )

    async def _edit_progress(self, update: ProgressUpdate) -> None:
        if self._progress_stopped:
            return
        try:
            await self.status.edit(
                embed=to_embed(ui.progress_card(self.view, update, dt.datetime.now(dt.UTC))),
                view=self._running_view,
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException as exc:
            if not (token_expired(exc) or message_deleted(exc)):
                raise
            # Every later edit would fail the same way: the token outlived its 15 minutes,
            # or the status message was deleted. The job itself runs on to its outcome.
            why = "status message was deleted" if message_deleted(exc) else (
                "interaction token expired")
            log.info("job %s: %s; no more progress", self.job_id, why)
            self._progress_stopped = True

    # ---- how it ends ---------------------------------------------------------------------------

    async def deliver(self, result: JobResult) -> JobOutcome:
        request = self.request
        finished_view = self._displays.views.finished(self.job_id, request.user_id)
        if result.nsfw_flagged and not request.channel_is_nsfw:
            policy = await self._displays.admissions.nsfw_policy(request.guild_id)
            if policy is not NsfwPolicy.SPOILER:
                await self._show(to_embed(ui.withheld_card(self.view)), view=finished_view)
                return JobStatus.SUCCEEDED
            spoiler = True
        else:
            spoiler = False
        try:
            data, recompressed = await fit_to_limit(result.image, self.status.filesize_limit)
        except ImageTooLargeForDiscord:
            await self._show(to_embed(ui.failure_card(
                self.view, "The image is too large to upload to this server.")))
            return JobStatus.FAILED
        image = ImageFile(data, f"{result.task_id}.jpeg", spoiler)
        note = "Recompressed to fit this server's upload limit." if recompressed else None
        embed = to_embed(ui.result_card(
            self.view,
            filename=image.filename,
            seconds=result.timings.total_seconds,
            spoiler=spoiler,
            note=note,
        ))
        posted = await self.status.replace(
            embed=embed, view=finished_view, image=image,
            ping=ui.image_ready_ping(request.user_id),
        )
        self._displays.note_result(self.job_id, posted)
        return JobStatus.SUCCEEDED

    async def failed(self, error: Exception) -> None:
        friendly = describe_error(error)
        if friendly is None:
            error_id = new_error_id()
            log.error(
                "job %s failed unexpectedly [error id %s]", self.job_id, error_id, exc_info=error
            )
            friendly = describe_with_id(error, error_id)
        else:
            log.warning("job %s failed: %s", self.job_id, error)
        await self._show(to_embed(ui.failure_card(self.view, friendly)))

    async def cancelled(self, by_name: str, *, counted: bool) -> None:
        await self._show(to_embed(ui.cancelled_card(self.view, by_name, counted=counted)))

    async def restarting(self) -> None:
        await self._show(to_embed(ui.restarting_card(self.view)))

    async def interrupted(self) -> None:
        await self._show(to_embed(ui.interrupted_card(self.view)))

    async def stopped_by_restart(self) -> None:
        await self._show(to_embed(ui.stopped_by_restart_card(self.view)))

    async def _show(self, embed: discord.Embed, *, view: discord.ui.View | None = None) -> None:
        """Replace the status message with a final notice (drops the buttons unless a view is
        given); if even that fails, log it: the job's outcome is recorded either way."""
        try:
            await self.status.replace(
                embed=embed, view=view, ping=f"<@{self.status.requester_id}>")
        except (discord.HTTPException, UnknownChannel):
            log.warning("could not show the outcome to the member", exc_info=True)


def _job_view(
    request: JobRequest, started_at: dt.datetime, parent: tuple[str, str] | None
) -> ui.JobView:
    return ui.JobView(
        prompt=request.prompt,
        size=request.size,
        requester_id=request.user_id,
        requester_name=request.user_name,
        started_at=started_at,
        parent=parent,
    )
