"""From an interaction to a delivered image: check, defer, run the job, keep one message current.

`GenerationService.handle()` is what `/imagine` calls (`reroll()` the Re-roll button). It
1. validates the prompt and size (pure; bad input is answered ephemerally at once);
2. acknowledges at once with a public deferral ("thinking…"), before any database round trip,
   so every member is answered well inside Discord's 3 s window however loaded the bot is;
3. asks admission (limits, moderation) whether this person may generate. A refusal removes the
   public placeholder and goes to the member alone as an ephemeral follow-up (see `_refuse`);
4. runs the job in its own task (tracked, so Cancel and shutdown work), editing the one status
   message as progress changes (throttled), then into the result — the moment it is
   downloaded — a withheld-image notice, or a short friendly failure. It is never left at
   "thinking…".

Why defer first rather than pre-check in memory: limits are counted in the shared ledger (across
processes on PostgreSQL), so only a database transaction decides them exactly; an in-memory guess
would either refuse members it should admit or need the database anyway, and under a burst the
database answer may take longer than Discord's 3 s. Deferring first costs a refused member a
"thinking…" placeholder that lives for one admission (milliseconds) and is then deleted.
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

import discord

from bot.imaging import ImageSize, InvalidInputError, resolve_size, validate_prompt
from bot.interactions import presentation as ui
from bot.interactions.checks import is_moderator, member_role_ids
from bot.interactions.delivery import (
    MESSAGE_EDIT_WINDOW,
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
from bot.storage.failures import database_unreachable
from bot.storage.guild_settings import NsfwPolicy

log = logging.getLogger(__name__)

# Discord answers 401 / 50027 once an interaction token is older than 15 minutes.
INVALID_WEBHOOK_TOKEN = 50027
# 404 / 10008: the status message is gone (e.g. a moderator deleted it mid-job).
UNKNOWN_MESSAGE = 10008
# On shutdown each running job gets this long to tell its member it was stopped.
SHUTDOWN_EDIT_TIMEOUT = 5.0
# Downloads and uploads at once: enough to keep two cores and the network busy, few enough that
# ~0.4–0.8 MB images (and the copies an upload makes) stay well inside 200 MB.
IMAGES_IN_FLIGHT = 24
DATABASE_UNAVAILABLE = "The bot's database is unavailable, try again in a minute."
REROLL_GONE = "I no longer have the details of this image to re-roll it."


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
        metrics: BotMetrics | None = None,
        database_usable: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.admissions = admissions
        self.views = views
        self.slots: JobSlots = slots or UnboundedSlots()
        self.jobs = ActiveJobs()
        self.progress_edit_interval = progress_edit_interval
        self.edit_budget = EditBudget(progress_edits_per_second)  # shared by every job
        # Jobs between download and upload (the only time a job holds image bytes).
        self.image_holders = asyncio.Semaphore(IMAGES_IN_FLIGHT)
        # Discord's per-message edit window; progress keeps one of its edits for the result.
        self.message_edit_window = MESSAGE_EDIT_WINDOW
        self.metrics = metrics or BotMetrics()
        # Consulted before every admission: False once the SQLite file vanished under us.
        self.database_usable = database_usable or (lambda: True)

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
        if await self._acknowledge(interaction):
            await self._admit_and_start(interaction, prompt, size, reroll_of)

    async def reroll(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Re-roll button: acknowledged first, then the original's prompt and size are read."""
        if not await self._acknowledge(interaction):
            return
        try:
            stored = await self.admissions.lookup(job_id)
        except Exception as exc:
            await self._admission_failed(interaction, exc, f"re-roll of job {job_id}")
            return
        try:
            # Written by a release with other rules, it may no longer be valid.
            prompt = validate_prompt(None if stored is None else stored.prompt)
            size = resolve_size(None if stored is None else stored.size)
        except InvalidInputError:
            await self._refuse(interaction, REROLL_GONE)
            return
        await self._admit_and_start(interaction, prompt, size, job_id)

    async def _acknowledge(self, interaction: discord.Interaction) -> bool:
        """Answer Discord at once (pure checks only); False when there is nothing more to do."""
        if not self.database_usable():  # known without a round trip (e.g. the file vanished)
            self.metrics.admission("unavailable")
            await reply_ephemeral(interaction, DATABASE_UNAVAILABLE)
            return False
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            # Too late (over 3 s) or already answered; nothing was reserved yet.
            log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
            return False
        return True

    async def _admit_and_start(
        self,
        interaction: discord.Interaction,
        prompt: str,
        size: ImageSize,
        reroll_of: int | None,
    ) -> None:
        request = request_from_interaction(interaction, prompt, size, reroll_of)
        try:
            admission = await self.admissions.admit(request)
        except Exception as exc:
            await self._admission_failed(interaction, exc, "admission")
            return
        self.metrics.admission("allowed" if admission.allowed else "refused")
        if admission.refusal is not None:
            await self._refuse(interaction, refusal_message(admission.refusal))
            return
        self.start(interaction, request, admission)

    async def _admission_failed(
        self, interaction: discord.Interaction, exc: Exception, where: str
    ) -> None:
        """The one case a member is told to come back later is a database that did not answer
        (never mere load); anything else is reported with an error id. Either way privately."""
        if database_unreachable(exc):
            self.metrics.admission("unavailable")
            log.error("%s failed, database unavailable: %s: %s", where, type(exc).__name__, exc)
            await self._refuse(interaction, DATABASE_UNAVAILABLE)
            return
        error_id = new_error_id()
        log.error("unhandled error in %s [error id %s]", where, error_id, exc_info=exc)
        await self._refuse(interaction, describe_with_id(exc, error_id))

    async def _refuse(self, interaction: discord.Interaction, text: str) -> None:
        """Take back the public "thinking…" placeholder and tell the member alone.

        Discord turns the first follow-up after a public deferral into the deferred message and
        ignores its ephemeral flag (so it would be public). Deleting the placeholder first makes
        the follow-up a new message, which can be ephemeral: nothing public is left behind.
        """
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            # Cannot take the placeholder back: say it there rather than leave it "thinking…".
            log.warning("could not remove the placeholder of a refusal: %s", exc)
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(
                    content=text, allowed_mentions=ui.NO_MENTIONS
                )
            return
        try:
            await reply_ephemeral(interaction, text)
        except discord.HTTPException as exc:
            log.warning("could not send a refusal: %s", exc)

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
            edit_window=self.message_edit_window,
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
            # No "Starting" edit: the deferral already says "thinking…", and under a burst the
            # shared edit budget is better spent on queue positions (`on_position`).
            async with self.slots.slot(request.user_id, on_position):
                self.metrics.queue_wait(time.monotonic() - job.started_monotonic)
                ready = await self.engine.run_until_ready(
                    request.prompt, request.size, on_progress, on_submitted=on_submitted
                )
            # The slot caps tasks at Novita; the download needs none, so a slow image host never
            # keeps another member's submit waiting.
            task_id = ready.task_id
            # Image bytes live from download to upload: only a few jobs hold them at once, so a
            # thousand jobs finishing together never hold a thousand images.
            async with self.image_holders:
                result = await self.engine.fetch_image(ready, on_progress)
                self.metrics.job_polls(result.polls)
                # Delivered at once: progress keeps one of the message's edits for it.
                await reporter.close()
                outcome = await self._deliver(job, interaction, result)
                del result
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
        await self._replace_status(
            interaction,
            embed=embed,
            view=finished_view,
            image=(data, filename, spoiler),
            ping=ui.image_ready_ping(request.user_id),
        )
        return JobStatus.SUCCEEDED

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
    ) -> None:
        """Edit the status message into its final form (`image` = bytes, filename, spoiler).

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
            await interaction.edit_original_response(
                embed=embed, view=view, attachments=attachment(), allowed_mentions=ui.NO_MENTIONS
            )
            return
        except discord.HTTPException as exc:
            if message_deleted(exc):
                # Deleted by a moderator (or the member): the outcome is not posted elsewhere.
                # A result still counts: the task was made and billed.
                log.info("the status message was deleted; outcome not shown")
                return
            if not token_expired(exc):
                raise
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise UnknownChannel("interaction token expired and the channel is unknown")
        requester = interaction.user.id
        await channel.send(
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

    async def close(self) -> None:
        await self.jobs.cancel_all()


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
