"""From an interaction to a delivered image: check, defer, run the job, keep one message current.

`GenerationService.handle()` is what `/imagine` and the Re-roll button call. It
1. validates the prompt and size and asks admission (limits, moderation) whether this person
   may generate — refusals are ephemeral, worded by `refusals`, sent inside Discord's 3 s window;
2. defers publicly, then runs the job in its own task (tracked, so Cancel and shutdown work);
3. edits the one status message as progress changes (throttled), then into the result, a
   withheld-image notice, or a short friendly failure. It is never left at "thinking…".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import discord

from bot.imaging import ImageSize, InvalidInputError, resolve_size, validate_prompt
from bot.interactions import presentation as ui
from bot.interactions.checks import is_moderator, member_role_ids
from bot.interactions.delivery import (
    EditBudget,
    ImageTooLargeForDiscord,
    ThrottledProgress,
    fit_to_limit,
)
from bot.interactions.messages import describe_error, describe_with_id, new_error_id
from bot.interactions.refusals import refusal_message
from bot.interactions.replies import reply_ephemeral
from bot.jobs.engine import JobEngine
from bot.jobs.fair_queue import JobSlots, UnboundedSlots
from bot.jobs.progress import JobPhase, JobResult, ProgressUpdate
from bot.limits.admission import Admission, AdmissionService, JobOutcome, JobRequest, JobStatus
from bot.novita.errors import NovitaError
from bot.observability.metrics import BotMetrics
from bot.storage.guild_settings import NsfwPolicy

log = logging.getLogger(__name__)

# Discord answers 401 / 50027 once an interaction token is older than 15 minutes.
INVALID_WEBHOOK_TOKEN = 50027
# 404 / 10008: the status message is gone (e.g. a moderator deleted it mid-job).
UNKNOWN_MESSAGE = 10008
# On shutdown each running job gets this long to tell its member it was stopped.
SHUTDOWN_EDIT_TIMEOUT = 5.0
# Discord wants an answer within 3 s of the click; limit checks get this much of it, leaving
# room for the round trip of the answer itself.
ADMISSION_BUDGET = 2.0
BUSY = "The bot is very busy right now. Please try again in a moment."
DATABASE_UNAVAILABLE = "The bot's database is unavailable, try again in a minute."


def token_expired(exc: discord.HTTPException) -> bool:
    """The interaction token outlived its 15 minutes: edits through it will never work again."""
    return exc.code == INVALID_WEBHOOK_TOKEN


def message_deleted(exc: discord.HTTPException) -> bool:
    """Unknown Message: a moderator (or the member) deleted the status message."""
    return exc.code == UNKNOWN_MESSAGE


class UnknownChannel(RuntimeError):
    """A late outcome cannot be posted: discord.py does not know the interaction's channel."""


@dataclass
class ActiveJob:
    job_id: int
    request: JobRequest
    view: ui.JobView
    task: asyncio.Task[None] | None = None
    cancelled_by: str | None = None
    finishing: bool = False  # past the point of no return: recording its outcome
    started_monotonic: float = field(default_factory=time.monotonic)


class ActiveJobs:
    """The jobs running in this process, by job id (for Cancel and clean shutdown)."""

    def __init__(self) -> None:
        self._jobs: dict[int, ActiveJob] = {}

    def add(self, job: ActiveJob) -> None:
        self._jobs[job.job_id] = job

    def remove(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)

    def __len__(self) -> int:
        return len(self._jobs)

    def cancel(self, job_id: int, by_name: str) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.task is None or job.task.done() or job.finishing:
            return False
        if job.cancelled_by is not None:
            # Already stopping (a double click): cancelling again would interrupt the edit that
            # shows "Cancelled" and leave the progress message behind.
            return True
        job.cancelled_by = by_name
        job.task.cancel()
        return True

    async def wait_idle(self) -> None:
        """Wait until every job running now has finished and recorded its outcome."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def cancel_all(self) -> None:
        """Stop every job and wait until each has recorded its outcome (jobs stay registered
        until then, so shutdown never closes the database under a job's last write)."""
        tasks = [job.task for job in self._jobs.values() if job.task and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


ViewFactory = Callable[[int, int], discord.ui.View]


class ResultLog(Protocol):
    """Where delivered images were posted (`bot.limits.member_history.MemberHistory`)."""

    async def record_result_message(
        self, job_id: int, channel_id: int, message_id: int
    ) -> None: ...


@dataclass(frozen=True)
class Views:
    """Builds the button rows; given by the composition root so `bot/` stays UI-agnostic."""

    running: ViewFactory  # (job_id, owner_id) -> view with Cancel
    finished: ViewFactory  # (job_id, owner_id) -> view with Re-roll and Delete


class GenerationService:
    def __init__(
        self,
        engine: JobEngine,
        admissions: AdmissionService,
        views: Views,
        *,
        slots: JobSlots | None = None,
        progress_edit_interval: float = 2.0,
        progress_edits_per_second: float = 0.0,
        admission_budget: float = ADMISSION_BUDGET,
        metrics: BotMetrics | None = None,
        database_usable: Callable[[], bool] | None = None,
        result_log: ResultLog | None = None,
    ) -> None:
        self.engine = engine
        self.admissions = admissions
        self.views = views
        self.slots: JobSlots = slots or UnboundedSlots()
        self.jobs = ActiveJobs()
        self.progress_edit_interval = progress_edit_interval
        self.edit_budget = EditBudget(progress_edits_per_second)  # shared by every job
        self.admission_budget = admission_budget
        self._late_admissions: set[asyncio.Task[None]] = set()
        self.metrics = metrics or BotMetrics()
        # Consulted before every admission: False once the SQLite file vanished under us.
        self.database_usable = database_usable or (lambda: True)
        self.result_log = result_log
        self._result_writes: set[asyncio.Task[None]] = set()

    # ---- entry point ---------------------------------------------------------------------------

    async def handle(
        self,
        interaction: discord.Interaction,
        prompt_text: str | None,
        size_text: str | None,
        *,
        reroll_of: int | None = None,
    ) -> None:
        try:
            prompt = validate_prompt(prompt_text)
            size = resolve_size(size_text)
        except InvalidInputError as exc:
            await reply_ephemeral(interaction, describe_error(exc) or str(exc))
            return

        if not self.database_usable():
            self.metrics.admission("unavailable")
            await reply_ephemeral(interaction, DATABASE_UNAVAILABLE)
            return
        request = request_from_interaction(interaction, prompt, size, reroll_of)
        admission = await self._admit_in_time(request)
        self.metrics.admission(
            "busy" if admission is None else "allowed" if admission.allowed else "refused"
        )
        if admission is None:
            await reply_ephemeral(interaction, BUSY)
            return
        if admission.refusal is not None:
            await reply_ephemeral(interaction, refusal_message(admission.refusal))
            return
        assert admission.job_id is not None
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException:
            # Too late (over 3 s) or already answered: nobody is waiting for this job.
            log.warning("could not defer interaction for job %s", admission.job_id, exc_info=True)
            await self.admissions.finish(admission.job_id, JobStatus.REFUNDED)
            return
        self.start(interaction, request, admission)

    async def _admit_in_time(self, request: JobRequest) -> Admission | None:
        """Admission's answer, or None when it is too slow to answer inside Discord's window.

        A check that finishes late may still have reserved a ledger row: that row is refunded
        in the background, so a slow database never costs the member part of their quota.
        """
        check = asyncio.ensure_future(self.admissions.admit(request))
        done, _ = await asyncio.wait({check}, timeout=self.admission_budget)
        if check in done:
            return check.result()
        log.warning("limit check took over %.1f s; answered busy", self.admission_budget)
        refund = asyncio.create_task(self._refund_late(check))
        self._late_admissions.add(refund)
        refund.add_done_callback(self._late_admissions.discard)
        return None

    async def _refund_late(self, check: asyncio.Future[Admission]) -> None:
        try:
            admission = await check
            if admission.job_id is not None:
                await self.admissions.finish(admission.job_id, JobStatus.REFUNDED)
        except Exception:
            log.exception("could not undo a late limit check")

    def start(
        self, interaction: discord.Interaction, request: JobRequest, admission: Admission
    ) -> ActiveJob:
        assert admission.job_id is not None
        job = ActiveJob(
            job_id=admission.job_id,
            request=request,
            view=ui.JobView(
                prompt=request.prompt,
                size=request.size,
                requester_id=request.user_id,
                requester_name=request.user_name,
                started_at=dt.datetime.now(dt.UTC),
            ),
        )
        self.jobs.add(job)
        self.metrics.job_started()
        job.task = asyncio.create_task(self._run(job, interaction), name=f"job-{job.job_id}")
        return job

    # ---- the job's life ------------------------------------------------------------------------

    async def _run(self, job: ActiveJob, interaction: discord.Interaction) -> None:
        request = job.request
        log.info(
            "job start id=%s guild=%s channel=%s user=%s size=%s",
            job.job_id,
            request.guild_id,
            request.channel_id,
            request.user_id,
            request.size.wire,
        )
        running_view = self.views.running(job.job_id, request.user_id)

        progress_stopped = False  # the status message can no longer be edited

        async def edit_progress(update: ProgressUpdate) -> None:
            nonlocal progress_stopped
            if progress_stopped:
                return
            now = dt.datetime.now(dt.UTC)
            try:
                await interaction.edit_original_response(
                    embed=ui.progress_embed(job.view, update, now),
                    view=running_view,
                    allowed_mentions=ui.NO_MENTIONS,
                )
            except discord.HTTPException as exc:
                if not (token_expired(exc) or message_deleted(exc)):
                    raise
                # Every later edit would fail the same way: the token outlived its 15 minutes,
                # or the status message was deleted. The job itself runs on to its outcome.
                why = "status message was deleted" if message_deleted(exc) else (
                    "interaction token expired")
                log.info("job %s: %s; no more progress", job.job_id, why)
                progress_stopped = True

        reporter: ThrottledProgress[ProgressUpdate] = ThrottledProgress(
            edit_progress,
            lambda u: ui.progress_signature(u, dt.datetime.now(dt.UTC)),
            self.progress_edit_interval,
            budget=self.edit_budget,
        )

        async def on_progress(update: ProgressUpdate) -> None:
            await reporter.offer(update)

        async def on_position(position: int) -> None:
            await reporter.offer(self._waiting_update(job, position))

        async def on_submitted(task_id: str) -> None:
            await self.admissions.mark_submitted(job.job_id, task_id)

        outcome: JobOutcome = JobStatus.FAILED
        task_id: str | None = None
        try:
            await reporter.offer(self._waiting_update(job, None))
            async with self.slots.slot(request.user_id, on_position):
                self.metrics.queue_wait(time.monotonic() - job.started_monotonic)
                ready = await self.engine.run_until_ready(
                    request.prompt, request.size, on_progress, on_submitted=on_submitted
                )
            # The slot caps tasks at Novita; the download needs none, so a slow image host never
            # keeps another member's submit waiting.
            task_id = ready.task_id
            result = await self.engine.fetch_image(ready, on_progress)
            self.metrics.job_polls(result.polls)
            await reporter.close()
            await asyncio.sleep(reporter.seconds_until_allowed())
            outcome = await self._deliver(job, interaction, result)
        except asyncio.CancelledError:
            outcome = JobStatus.CANCELLED
            await reporter.close()  # no progress edit may land after the final one
            if job.cancelled_by is None:  # the bot is shutting down
                outcome = JobStatus.FAILED  # not the member's doing: refund it
                # Say so rather than leave a progress bar (and a dead Cancel button) forever.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._show(interaction, ui.interrupted_embed(job.view)),
                        SHUTDOWN_EDIT_TIMEOUT,
                    )
                raise
            await self._show(interaction, ui.cancelled_embed(job.view, job.cancelled_by))
        except Exception as exc:
            await reporter.close()
            outcome, task_id = await self._fail(job, interaction, exc)
        finally:
            job.finishing = True
            seconds = time.monotonic() - job.started_monotonic
            log.info(
                "job finish id=%s task=%s guild=%s user=%s size=%s duration=%.1fs outcome=%s",
                job.job_id,
                task_id,
                request.guild_id,
                request.user_id,
                request.size.wire,
                seconds,
                outcome.value,
            )
            self.metrics.job_finished(outcome.value, seconds)
            # Record the outcome even if a shutdown cancels us mid-write: an interrupted write
            # would leave the ledger row counting as in progress.
            finish = asyncio.ensure_future(self._finish_quietly(job, outcome, task_id, seconds))
            try:
                await asyncio.shield(finish)
            except asyncio.CancelledError:
                await finish
                raise
            finally:
                self.jobs.remove(job.job_id)

    def _waiting_update(self, job: ActiveJob, position: int | None) -> ProgressUpdate:
        return ProgressUpdate(
            phase=JobPhase.WAITING,
            percent=0.0,
            percent_is_estimate=True,
            eta_seconds=None,
            elapsed_seconds=time.monotonic() - job.started_monotonic,
            queue_position=position,
        )

    async def _deliver(
        self, job: ActiveJob, interaction: discord.Interaction, result: JobResult
    ) -> JobOutcome:
        request = job.request
        finished_view = self.views.finished(job.job_id, request.user_id)
        if result.nsfw_flagged and not request.channel_is_nsfw:
            policy = await self.admissions.nsfw_policy(request.guild_id)
            if policy is not NsfwPolicy.SPOILER:
                await self._show(interaction, ui.withheld_embed(job.view), view=finished_view)
                return JobStatus.SUCCEEDED
            spoiler = True
        else:
            spoiler = False
        limit = interaction.filesize_limit
        try:
            data, recompressed = await fit_to_limit(result.image, limit)
        except ImageTooLargeForDiscord:
            await self._show(
                interaction,
                ui.failure_embed(job.view, "The image is too large to upload to this server."),
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
            interaction,
            embed=embed,
            view=finished_view,
            image=(data, filename, spoiler),
            ping=ui.image_ready_ping(request.user_id),
        )
        self._note_result(job, posted)
        return JobStatus.SUCCEEDED

    def _note_result(self, job: ActiveJob, posted: discord.Message | None) -> None:
        """Remember where the image went (history links to it), in the background: the image is
        delivered, so nothing may now turn a shutdown into a failed, refunded job."""
        if posted is None or self.result_log is None:
            return
        write = asyncio.create_task(
            self._record_result(self.result_log, job.job_id, posted.channel.id, posted.id)
        )
        self._result_writes.add(write)
        write.add_done_callback(self._result_writes.discard)

    @staticmethod
    async def _record_result(
        result_log: ResultLog, job_id: int, channel_id: int, message_id: int
    ) -> None:
        try:
            await result_log.record_result_message(job_id, channel_id, message_id)
        except Exception:
            log.warning("could not record where job %s was posted", job_id, exc_info=True)

    async def _fail(
        self, job: ActiveJob, interaction: discord.Interaction, exc: Exception
    ) -> tuple[JobOutcome, str | None]:
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
        await self._show(interaction, ui.failure_embed(job.view, friendly))
        # Refused before submission or failed upstream: it does not count against the user.
        return JobStatus.FAILED, task_id

    async def _show(
        self,
        interaction: discord.Interaction,
        embed: discord.Embed,
        *,
        view: discord.ui.View | None = None,
    ) -> None:
        """Replace the status message with a final notice (drops the buttons unless a view is
        given); if even that fails, log it: the job's outcome is recorded either way."""
        try:
            await self._replace_status(
                interaction, embed=embed, view=view, ping=f"<@{interaction.user.id}>"
            )
        except (discord.HTTPException, UnknownChannel):
            log.warning("could not show the outcome to the member", exc_info=True)

    async def _replace_status(
        self,
        interaction: discord.Interaction,
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
            return await interaction.edit_original_response(
                embed=embed, view=view, attachments=attachment(), allowed_mentions=ui.NO_MENTIONS
            )
        except discord.HTTPException as exc:
            if message_deleted(exc):
                # Deleted by a moderator (or the member): the outcome is not posted elsewhere.
                # A result still counts: the task was made and billed.
                log.info("the status message was deleted; outcome not shown")
                return None
            if not token_expired(exc):
                raise
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise UnknownChannel("interaction token expired and the channel is unknown")
        requester = interaction.user.id
        return await channel.send(
            content=ping,
            embed=embed,
            files=attachment(),
            view=view or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(requester)]
            ),
        )

    async def _finish_quietly(
        self, job: ActiveJob, outcome: JobOutcome, task_id: str | None, seconds: float
    ) -> None:
        try:
            await self.admissions.finish(
                job.job_id, outcome, task_id=task_id, timings={"total": seconds}
            )
        except Exception:
            log.exception("could not record the end of job %s", job.job_id)

    async def results_recorded(self) -> None:
        """Wait until every delivered result so far has its message recorded (tests, close)."""
        if self._result_writes:
            await asyncio.gather(*self._result_writes, return_exceptions=True)

    async def close(self) -> None:
        await self.jobs.cancel_all()
        if self._late_admissions:  # let refunds of late limit checks land before the DB closes
            await asyncio.gather(*self._late_admissions, return_exceptions=True)
        await self.results_recorded()  # and where results were posted


def request_from_interaction(
    interaction: discord.Interaction,
    prompt: str,
    size: ImageSize,
    reroll_of: int | None = None,
) -> JobRequest:
    user = interaction.user
    channel = interaction.channel
    channel_is_nsfw = bool(
        channel is not None and hasattr(channel, "is_nsfw") and channel.is_nsfw()
    )
    return JobRequest(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=user.id,
        prompt=prompt,
        size=size,
        user_name=user.display_name,
        role_ids=member_role_ids(interaction),
        is_moderator=is_moderator(interaction),
        channel_is_nsfw=channel_is_nsfw,
        reroll_of=reroll_of,
        parent_channel_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
    )
