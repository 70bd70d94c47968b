"""How a job ends on Discord: the result (recompressed, spoilered or withheld), a friendly
failure, or a notice; where the result was posted is remembered for the member's history."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import discord

from bot.interactions.active_jobs import ActiveJob
from bot.interactions.transport import status_embeds as ui
from bot.interactions.transport.delivery import ImageTooLargeForDiscord, fit_to_limit
from bot.interactions.transport.status_message import UnknownChannel
from bot.jobs.model import JobOutcome, JobStatus
from bot.jobs.progress import JobResult
from bot.limits.admission import AdmissionService
from bot.novita.errors import NovitaError
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.repositories.guild_settings import NsfwPolicy
from bot.wording.messages import describe_error, describe_with_id, new_error_id

log = logging.getLogger(__name__)


ViewFactory = Callable[[int, int], discord.ui.View]


@dataclass(frozen=True)
class Views:
    """Builds the button rows; given by the composition root so `bot/` stays UI-agnostic."""

    running: ViewFactory  # (job_id, owner_id) -> view with Cancel
    finished: ViewFactory  # (job_id, owner_id) -> view with Re-roll and Delete


class ResultLog(Protocol):
    """Where delivered images were posted (`member_history.MemberHistory`)."""

    async def record_result_message(
        self, job_id: int, channel_id: int, message_id: int
    ) -> None: ...


class JobOutcomes:
    """Shows each job's end in its status message (one place for every way a job ends)."""

    def __init__(
        self,
        views: Views,
        admissions: AdmissionService,
        outbox: WriteOutbox,
        result_log: ResultLog | None = None,
    ) -> None:
        self.views = views
        self.admissions = admissions
        self.outbox = outbox
        self.result_log = result_log
        self._result_writes: set[asyncio.Future[bool]] = set()

    async def deliver(self, job: ActiveJob, result: JobResult) -> JobOutcome:
        request = job.request
        finished_view = self.views.finished(job.job_id, request.user_id)
        if result.nsfw_flagged and not request.channel_is_nsfw:
            policy = await self.admissions.nsfw_policy(request.guild_id)
            if policy is not NsfwPolicy.SPOILER:
                await self.show(job, ui.withheld_embed(job.view), view=finished_view)
                return JobStatus.SUCCEEDED
            spoiler = True
        else:
            spoiler = False
        try:
            data, recompressed = await fit_to_limit(result.image, job.status.filesize_limit)
        except ImageTooLargeForDiscord:
            await self.show(
                job, ui.failure_embed(job.view, "The image is too large to upload to this server.")
            )
            return JobStatus.FAILED
        filename = f"{result.task_id}.jpeg"
        note = "Recompressed to fit this server's upload limit." if recompressed else None
        embed = ui.result_embed(
            job.view,
            filename=filename,
            seconds=result.timings.total_seconds,
            spoiler=spoiler,
            note=note,
        )
        posted = await self._replace_status(
            job,
            embed=embed,
            view=finished_view,
            image=(data, filename, spoiler),
            ping=ui.image_ready_ping(request.user_id),
        )
        self._note_result(job, posted)
        return JobStatus.SUCCEEDED

    def _note_result(self, job: ActiveJob, posted: discord.Message | None) -> None:
        """Remember where the image went (history links to it) through the write outbox: in the
        background, retried through a database blip, never turning a delivered job into a
        failed, refunded one."""
        if posted is None or self.result_log is None:
            return
        result_log, channel_id, message_id = self.result_log, posted.channel.id, posted.id
        write = self.outbox.put(
            f"result message of job {job.job_id}",
            lambda: result_log.record_result_message(job.job_id, channel_id, message_id),
        )
        self._result_writes.add(write)
        write.add_done_callback(self._result_writes.discard)

    async def fail(self, job: ActiveJob, exc: Exception) -> tuple[JobOutcome, str | None]:
        task_id = exc.task_id if isinstance(exc, NovitaError) else None
        friendly = describe_error(exc)
        if friendly is None:
            error_id = new_error_id()
            log.error(
                "job %s failed unexpectedly [error id %s]", job.job_id, error_id, exc_info=exc
            )
            friendly = describe_with_id(exc, error_id)
        else:
            log.warning("job %s failed: %s", job.job_id, exc)
        await self.show(job, ui.failure_embed(job.view, friendly))
        # Refused before submission or failed upstream: it does not count against the user.
        return JobStatus.FAILED, task_id

    async def show(
        self,
        job: ActiveJob,
        embed: discord.Embed,
        *,
        view: discord.ui.View | None = None,
    ) -> None:
        """Replace the status message with a final notice (drops the buttons unless a view is
        given); if even that fails, log it: the job's outcome is recorded either way."""
        try:
            await self._replace_status(
                job, embed=embed, view=view, ping=f"<@{job.status.requester_id}>"
            )
        except (discord.HTTPException, UnknownChannel):
            log.warning("could not show the outcome to the member", exc_info=True)

    async def _replace_status(
        self,
        job: ActiveJob,
        *,
        embed: discord.Embed,
        view: discord.ui.View | None,
        ping: str,
        image: tuple[bytes, str, bool] | None = None,
    ) -> discord.Message | None:
        """Edit the status message into its final form; past the token's 15 minutes, post it
        in the channel pinging only the requester (`StatusMessage.replace`: the one place that
        fallback lives). Returns the message that shows it (None: it was deleted)."""
        return await job.status.replace(embed=embed, view=view, ping=ping, image=image)

    async def results_recorded(self) -> None:
        """Wait until every delivered result so far has its message recorded."""
        if self._result_writes:
            await asyncio.gather(*self._result_writes, return_exceptions=True)
