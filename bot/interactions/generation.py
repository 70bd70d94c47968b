"""From an interaction to a delivered image: check, defer, run the job, keep one message current.

`GenerationService.handle()` is what `/imagine` calls (`reroll()` the Re-roll button). It
1. validates the prompt and size (pure; bad input is answered ephemerally at once);
2. acknowledges at once with a public deferral ("thinking…"), before any database round trip,
   so every member is answered well inside Discord's 3 s window however loaded the bot is;
3. asks admission (limits, moderation) whether this person may generate. A refusal removes the
   public placeholder and goes to the member alone as an ephemeral follow-up (see `refuse`);
4. runs the job in its own task (tracked, so Cancel and shutdown work), editing the one status
   message as progress changes (throttled), then into the result — the moment it is
   downloaded — a withheld-image notice, or a short friendly failure. It is never left at
   "thinking…".

Why defer first rather than pre-check in memory: limits are counted in the shared ledger (across
processes on PostgreSQL), so only a database transaction decides them exactly; an in-memory guess
would either refuse members it should admit or need the database anyway, and under a burst the
database answer may take longer than Discord's 3 s. Deferring first costs a refused member a
"thinking…" placeholder that lives for one admission (milliseconds) and is then deleted.

Every job is journaled (`bot.storage.repositories.journal`) while it runs, so a restart can take
it back (`resume`); its end is recorded through the write outbox, which retries until the database
takes it. On shutdown running jobs are left in the journal and their members told the image
will follow after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

import discord

from bot.imaging import ImageSize, InvalidInputError, resolve_size, validate_prompt
from bot.interactions.active_jobs import ActiveJob, ActiveJobs
from bot.interactions.kept_results import KeptResultLookups, show_kept_results
from bot.interactions.outcomes import JobOutcomes, ResultLog, Views
from bot.interactions.requests import bot_is_present, request_from_interaction
from bot.interactions.transport import status_embeds as ui
from bot.interactions.transport.delivery import (
    MESSAGE_EDIT_WINDOW,
    EditBudget,
    ThrottledProgress,
)
from bot.interactions.transport.replies import reply_ephemeral
from bot.interactions.transport.status_message import (
    INVALID_WEBHOOK_TOKEN,
    UNKNOWN_MESSAGE,
    StatusMessage,
    UnknownChannel,
    message_deleted,
    token_expired,
)
from bot.jobs.edits import EditJob, EditRunner
from bot.jobs.engine import JobEngine
from bot.jobs.fair_queue import JobSlots, UnboundedSlots
from bot.jobs.model import JobKind, JobOutcome, JobRequest, JobStage, JobStatus, shard_of
from bot.jobs.progress import ProgressUpdate
from bot.limits.admission import Admission, AdmissionService
from bot.observability.metrics import BotMetrics
from bot.storage.reliability.journal_writes import JournalWrites, SubmittedTasks
from bot.storage.reliability.outage import OutageLog, is_database_unavailable
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.repositories.journal import JobJournal, JournalEntry
from bot.storage.repositories.kept_results import KeptResults
from bot.wording.messages import (
    DATABASE_UNAVAILABLE,
    describe_error,
    describe_with_id,
    new_error_id,
)
from bot.wording.refusals import refusal_message

log = logging.getLogger(__name__)

# On shutdown each running job gets this long to tell its member it was stopped.
SHUTDOWN_EDIT_TIMEOUT = 5.0
# A job posting its result when shutdown starts gets this long to finish (not cut halfway).
DELIVERY_GRACE = 10.0
# Journal writes on a job's way (best effort: a stalled database must not stall the job).
JOURNAL_WRITE_TIMEOUT = 5.0
# How long a finished job waits for its end to be recorded before leaving it to the outbox.
FINISH_WAIT = 5.0
__all__ = [
    "DATABASE_UNAVAILABLE", "INVALID_WEBHOOK_TOKEN", "UNKNOWN_MESSAGE", "ActiveJob",
    "ActiveJobs", "GenerationService", "UnknownChannel", "Views", "message_deleted",
    "request_from_interaction", "token_expired",
]
# Downloads and uploads at once: enough to keep two cores and the network busy, few enough that
# ~0.4–0.8 MB images (and the copies an upload makes) stay well inside 200 MB.
IMAGES_IN_FLIGHT = 24
REROLL_GONE = "I no longer have the details of this image to re-roll it."


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
        result_log: ResultLog | None = None,
        journal: JobJournal | None = None,
        outbox: WriteOutbox | None = None,
        owner_id: str = "",
        shard_count: Callable[[], int] = lambda: 1,
        edits: EditRunner | None = None,
        kept_results: KeptResults | None = None,
    ) -> None:
        self.engine = engine
        self.edits = edits  # Edit and /imagine-edit (bot.interactions.edit_flow)
        # Outcomes kept for members who could not be reached (user-installed app).
        self.kept_results = kept_results
        self._kept = None if kept_results is None else KeptResultLookups(kept_results)
        self._side_tasks: set[asyncio.Task[None]] = set()
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
        # Without a journal (tests, tools) jobs are not crash-safe: shutdown refunds them.
        self.journal = journal
        self._journal_writes = None if journal is None else JournalWrites(journal)
        self.outbox = outbox or WriteOutbox()
        self.outage: OutageLog = self.outbox.outage
        self.outcomes = JobOutcomes(views, admissions, self.outbox, result_log)
        self._submitted = None if journal is None else SubmittedTasks(journal, self.outbox)
        self.owner_id = owner_id
        self.shard_count = shard_count

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
        if await self.acknowledge(interaction):
            await self._admit_and_start(interaction, prompt, size, reroll_of)

    async def reroll(self, interaction: discord.Interaction, job_id: int) -> None:
        """The Re-roll button: acknowledged first, then the original's prompt and size are read."""
        if not await self.acknowledge(interaction):
            return
        try:
            stored = await self.admissions.lookup(job_id)
        except Exception as exc:
            await self.admission_failed(interaction, exc, f"re-roll of job {job_id}")
            return
        try:
            # Written by a release with other rules, it may no longer be valid.
            prompt = validate_prompt(None if stored is None else stored.prompt)
            size = resolve_size(None if stored is None else stored.size)
        except InvalidInputError:
            await self.refuse(interaction, REROLL_GONE)
            return
        await self._admit_and_start(interaction, prompt, size, job_id)

    async def acknowledge(self, interaction: discord.Interaction) -> bool:
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
        await self.admit_and_start(interaction, request)

    async def admit_and_start(
        self,
        interaction: discord.Interaction,
        request: JobRequest,
        *,
        edit: EditJob | None = None,
        parent: tuple[str, str] | None = None,
    ) -> None:
        """Admit an acknowledged request and run it (refused: privately, placeholder gone)."""
        try:
            admission = await self.admissions.admit(request)
        except Exception as exc:
            await self.admission_failed(interaction, exc, "admission")
            return
        self.metrics.admission("allowed" if admission.allowed else "refused")
        if admission.refusal is not None:
            await self.refuse(interaction, refusal_message(admission.refusal))
            return
        job = self.start(interaction, request, admission, edit=edit, parent=parent)
        if self._kept is not None:
            # Kept results (closed DMs) are shown beside the new job, never ahead of it.
            side = asyncio.create_task(self._offer_kept_results(job, interaction))
            self._side_tasks.add(side)
            side.add_done_callback(self._side_tasks.discard)

    async def _offer_kept_results(self, job: ActiveJob, interaction: discord.Interaction) -> None:
        """Show the member the results kept for them while their DMs were closed."""
        assert self._kept is not None
        if not await self._kept.has_results(job.request.user_id):
            return
        try:
            # Give the placeholder its first form, so the kept results follow as new messages.
            await job.status.edit(
                embed=ui.progress_embed(job.view, self._waiting_update(job, None),
                                        dt.datetime.now(dt.UTC)),
                allowed_mentions=ui.NO_MENTIONS,
            )
            await show_kept_results(interaction, self.kept_results)
        except discord.HTTPException:
            log.warning("could not show kept results to user %s", job.request.user_id,
                        exc_info=True)

    async def admission_failed(
        self, interaction: discord.Interaction, exc: Exception, where: str
    ) -> None:
        """The one case a member is told to come back later is a database that did not answer
        (never mere load); anything else is reported with an error id. Either way privately."""
        if is_database_unavailable(exc):
            self.metrics.admission("unavailable")
            log.error("%s failed, database unavailable: %s: %s", where, type(exc).__name__, exc)
            await self.refuse(interaction, DATABASE_UNAVAILABLE)
            return
        error_id = new_error_id()
        log.error("unhandled error in %s [error id %s]", where, error_id, exc_info=exc)
        await self.refuse(interaction, describe_with_id(exc, error_id))

    async def refuse(self, interaction: discord.Interaction, text: str) -> None:
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
        self,
        interaction: discord.Interaction,
        request: JobRequest,
        admission: Admission,
        *,
        edit: EditJob | None = None,
        parent: tuple[str, str] | None = None,
    ) -> ActiveJob:
        job = self.new_job(interaction, request, admission, edit=edit, parent=parent)
        record = None if self.journal is None else self._journal_entry(job, interaction)
        return self.launch(job, record)

    def new_job(
        self,
        interaction: discord.Interaction,
        request: JobRequest,
        admission: Admission,
        *,
        edit: EditJob | None = None,
        parent: tuple[str, str] | None = None,
    ) -> ActiveJob:
        """An admitted job, not yet running (`launch` runs it)."""
        assert admission.job_id is not None
        keep = None if self.kept_results is None else self.kept_results.keep
        return ActiveJob(
            job_id=admission.job_id,
            request=request,
            view=ui.JobView(
                prompt=request.prompt,
                size=request.size,
                requester_id=request.user_id,
                requester_name=request.user_name,
                started_at=dt.datetime.now(dt.UTC),
                parent=parent,
            ),
            status=StatusMessage.of_interaction(
                interaction, bot_present=bot_is_present(interaction), keep=keep),
            edit=edit,
        )

    def launch(self, job: ActiveJob, record: JournalEntry | None = None) -> ActiveJob:
        """Run a job in its own task: a new one (`record` is its journal row to write first)
        or one taken back from the journal after a restart (`job.resumed`)."""
        self.jobs.add(job)
        self.metrics.job_started()
        job.task = asyncio.create_task(self._run(job, record), name=f"job-{job.job_id}")
        return job

    def _journal_entry(self, job: ActiveJob, interaction: discord.Interaction) -> JournalEntry:
        request = job.request
        return JournalEntry(
            job_id=job.job_id,
            owner_id=self.owner_id,
            shard_id=shard_of(request.guild_id, self.shard_count()),
            channel_id=request.channel_id or 0,
            user_id=request.user_id,
            guild_id=request.guild_id,
            user_name=request.user_name,
            channel_is_nsfw=request.channel_is_nsfw,
            application_id=interaction.application_id,
            interaction_id=interaction.id,
            interaction_token=interaction.token,
            interaction_at=interaction.created_at,
            filesize_limit=interaction.filesize_limit,
            kind=str(request.kind),
            parent_url=None if job.view.parent is None else job.view.parent[1],
        )

    # ---- the job's life ------------------------------------------------------------------------

    async def _run(self, job: ActiveJob, record: JournalEntry | None = None) -> None:
        request = job.request
        resumed = job.resumed
        log.info(
            "job %s id=%s guild=%s channel=%s user=%s size=%s",
            "start" if resumed is None else f"resume state={resumed.state}",
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
                await job.status.edit(
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
            self._record_submitted(job, task_id)

        outcome: JobOutcome = JobStatus.FAILED
        task_id: str | None = None
        left_for_restart = False
        try:
            if record is not None:
                job.journaled = await self._journal_write(
                    f"journal job {job.job_id}", self._writes().record(record))
            # No "Starting" edit: the deferral already says "thinking…", and under a burst the
            # shared edit budget is better spent on queue positions (`on_position`).
            if resumed is not None and resumed.task_id is not None:
                # Novita has had it since before the restart: poll it again, never resubmit.
                task_id = resumed.task_id
                ready = await self.engine.resume_until_ready(
                    resumed.task_id, request.prompt, request.size,
                    started_ago=time.monotonic() - job.started_monotonic, on_progress=on_progress,
                    durations=(self.edits.durations
                               if request.kind is JobKind.EDIT and self.edits else None),
                )
            else:
                async with self.slots.slot(request.user_id, on_position):
                    self.metrics.queue_wait(time.monotonic() - job.started_monotonic)
                    if job.journaled:  # from here a submit may be on its way: never repeat it
                        await self._journal_write(
                            f"journal job {job.job_id}",
                            self._writes().mark_submitting(job.job_id))
                    if job.edit is not None:
                        ready = await self._edits().run_until_ready(
                            job.edit, on_progress, on_submitted=on_submitted)
                    else:
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
                job.delivering = True
                outcome = await self.outcomes.deliver(job, result)
                del result
        except asyncio.CancelledError:
            outcome = JobStatus.CANCELLED
            await reporter.close()  # no progress edit may land after the final one
            if job.cancelled_by is None:  # the bot is shutting down
                if job.journaled:
                    # Left in the journal: the next start takes it back (and delivers it).
                    left_for_restart = True
                    embed = ui.restarting_embed(job.view)
                else:  # nothing to take it back from: not the member's doing, so refund it
                    outcome = JobStatus.FAILED
                    embed = ui.interrupted_embed(job.view)
                # Say so rather than leave a progress bar (and a dead Cancel button) forever.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.outcomes.show(job, embed), SHUTDOWN_EDIT_TIMEOUT)
                raise
            await self.outcomes.show(job, ui.cancelled_embed(job.view, job.cancelled_by))
        except Exception as exc:
            await reporter.close()
            outcome, failed_task = await self.outcomes.fail(job, exc)
            task_id = failed_task or task_id
        finally:
            job.finishing = True
            seconds = time.monotonic() - job.started_monotonic
            if left_for_restart:
                log.info("job left for the next start id=%s task=%s", job.job_id, task_id)
                self.jobs.remove(job.job_id)
            else:
                await self._conclude(job, outcome, task_id, seconds)

    async def _conclude(
        self, job: ActiveJob, outcome: JobOutcome, task_id: str | None, seconds: float
    ) -> None:
        request = job.request
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
        # Recorded through the outbox: retried until the database takes it, even if a
        # shutdown cancels us meanwhile (the journal row stays until it lands).
        landed = self._record_outcome(job, outcome, task_id, {"total": seconds})
        try:
            await asyncio.wait({landed}, timeout=FINISH_WAIT)
        finally:
            self.jobs.remove(job.job_id)

    def _edits(self) -> EditRunner:
        if self.edits is None:
            raise RuntimeError("this GenerationService was built without an EditRunner")
        return self.edits

    def _journal(self) -> JobJournal:
        assert self.journal is not None
        return self.journal

    def _writes(self) -> JournalWrites:
        assert self._journal_writes is not None
        return self._journal_writes

    async def _journal_write(self, doing: str, write: Awaitable[object]) -> bool:
        """A best-effort journal write on the job's way; False (logged once per outage) if the
        database did not take it in time. The job runs on either way."""
        try:
            await asyncio.wait_for(write, JOURNAL_WRITE_TIMEOUT)
        except Exception as error:
            self.outage.failed(error, doing)
            return False
        return True

    def _record_submitted(self, job: ActiveJob, task_id: str) -> None:
        """Novita has the task (queued in order, so it lands before the job's end)."""
        if self._submitted is not None:
            self._submitted.add(job.job_id, task_id)
        else:
            self.outbox.put(
                f"task of job {job.job_id}",
                lambda: self.admissions.mark_submitted(job.job_id, task_id),
            )

    def _record_outcome(
        self,
        job: ActiveJob,
        outcome: JobOutcome,
        task_id: str | None,
        timings: dict[str, float] | None,
        error: str | None = None,
    ) -> asyncio.Future[bool]:
        label = f"end of job {job.job_id}"
        if self.journal is not None:
            journal = self.journal
            return self.outbox.put(label, lambda: journal.settle(
                job.job_id, outcome, task_id=task_id, timings=timings, error=error))
        return self.outbox.put(label, lambda: self.admissions.finish(
            job.job_id, outcome, task_id=task_id, timings=timings, error=error))

    async def stop_unresumable(self, job: ActiveJob, why: str) -> None:
        """A job that cannot be taken back after a restart (a submit may or may not have
        reached Novita, or its details are gone): tell the member, refund it."""
        log.warning("job %s cannot be taken back after the restart: %s; refunded", job.job_id,
                    why)
        await self.outcomes.show(job, ui.stopped_by_restart_embed(job.view))
        landed = self._record_outcome(job, JobStatus.REFUNDED, None, None, error=why)
        await asyncio.wait({landed}, timeout=FINISH_WAIT)

    def _waiting_update(self, job: ActiveJob, position: int | None) -> ProgressUpdate:
        return ProgressUpdate(
            stage=JobStage.WAITING,
            percent=0.0,
            percent_is_estimate=True,
            eta_seconds=None,
            elapsed_seconds=time.monotonic() - job.started_monotonic,
            queue_position=position,
        )

    async def results_recorded(self) -> None:
        """Wait until every delivered result so far has its message recorded (tests, close)."""
        await self.outcomes.results_recorded()

    async def close(self) -> None:
        """Shutdown: results being posted finish; every other job is left in the journal for
        the next start (its member told so); pending end-of-job writes get a last chance."""
        for side in list(self._side_tasks):
            side.cancel()
        await self.jobs.cancel_all(DELIVERY_GRACE)
        if self._kept is not None:
            await self._kept.close()
        if self._journal_writes is not None:
            await self._journal_writes.close()
        await self.results_recorded()  # and where results were posted
        await self.outbox.close()
