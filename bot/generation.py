"""From an interaction to a delivered image: check, defer, run the job, keep one message current.

`GenerationService.handle()` is what `/imagine` and the Re-roll button call. It
1. validates the prompt and size and asks the `GenerationGate` (limits, moderation) whether this
   person may generate — refusals are ephemeral and sent inside Discord's 3-second window;
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import discord

from bot import presentation as ui
from bot.delivery import EditBudget, ImageTooLargeForDiscord, ThrottledProgress, fit_to_limit
from bot.gate import Admission, GenerationGate, GenerationRequest, JobOutcome
from bot.imaging import ImageSize, InvalidInputError, resolve_size, validate_prompt
from bot.jobs.engine import JobEngine
from bot.jobs.progress import JobPhase, JobResult, ProgressUpdate
from bot.messages import describe_error, describe_with_id, new_error_id
from bot.novita.errors import NovitaError
from bot.replies import reply_ephemeral

log = logging.getLogger(__name__)

# Discord answers 401 / 50027 once an interaction token is older than 15 minutes.
INVALID_WEBHOOK_TOKEN = 50027
# On shutdown each running job gets this long to tell its member it was stopped.
SHUTDOWN_EDIT_TIMEOUT = 5.0
# Discord wants an answer within 3 s of the click; limit checks get this much of it, leaving
# room for the round trip of the answer itself.
ADMISSION_BUDGET = 2.0
BUSY = "The bot is very busy right now. Please try again in a moment."


class JobSlots(Protocol):
    """Bot-wide concurrency: wait for a free upstream slot, reporting the queue position."""

    def slot(
        self, user_id: int, on_position: Callable[[int], Awaitable[None]]
    ) -> contextlib.AbstractAsyncContextManager[None]: ...


class UnboundedSlots:
    """No bot-wide cap: every job starts at once."""

    @contextlib.asynccontextmanager
    async def slot(
        self, user_id: int, on_position: Callable[[int], Awaitable[None]]
    ) -> AsyncIterator[None]:
        yield


@dataclass
class ActiveJob:
    job_id: int
    request: GenerationRequest
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
        gate: GenerationGate,
        views: Views,
        *,
        slots: JobSlots | None = None,
        progress_edit_interval: float = 2.0,
        progress_edits_per_second: float = 0.0,
        admission_budget: float = ADMISSION_BUDGET,
    ) -> None:
        self.engine = engine
        self.gate = gate
        self.views = views
        self.slots: JobSlots = slots or UnboundedSlots()
        self.jobs = ActiveJobs()
        self.progress_edit_interval = progress_edit_interval
        self.edit_budget = EditBudget(progress_edits_per_second)  # shared by every job
        self.admission_budget = admission_budget
        self._late_admissions: set[asyncio.Task[None]] = set()

    # ---- entry point ---------------------------------------------------------------------------

    async def handle(
        self,
        interaction: discord.Interaction,
        prompt_text: str | None,
        size_text: str | None,
        *,
        parent_job_id: int | None = None,
    ) -> None:
        try:
            prompt = validate_prompt(prompt_text)
            size = resolve_size(size_text)
        except InvalidInputError as exc:
            await reply_ephemeral(interaction, describe_error(exc) or str(exc))
            return

        request = request_from_interaction(interaction, prompt, size, parent_job_id)
        admission = await self._admit_in_time(request)
        if admission is None:
            await reply_ephemeral(interaction, BUSY)
            return
        if not admission.allowed:
            await reply_ephemeral(
                interaction, ui.refusal_text(admission.reason or "Not allowed.", admission.retry_at)
            )
            return
        assert admission.job_id is not None
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException:
            # Too late (over 3 s) or already answered: nobody is waiting for this job.
            log.warning("could not defer interaction for job %s", admission.job_id, exc_info=True)
            await self.gate.finish(admission.job_id, JobOutcome.REFUSED)
            return
        self.start(interaction, request, admission)

    async def _admit_in_time(self, request: GenerationRequest) -> Admission | None:
        """The gate's answer, or None when it is too slow to answer inside Discord's window.

        A check that finishes late may still have reserved a ledger row: that row is refunded
        in the background, so a slow database never costs the member part of their quota.
        """
        check = asyncio.ensure_future(self.gate.admit(request))
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
            if admission.allowed and admission.job_id is not None:
                await self.gate.finish(admission.job_id, JobOutcome.REFUSED)
        except Exception:
            log.exception("could not undo a late limit check")

    def start(
        self, interaction: discord.Interaction, request: GenerationRequest, admission: Admission
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

        token_expired = False

        async def edit_progress(update: ProgressUpdate) -> None:
            nonlocal token_expired
            if token_expired:
                return
            now = dt.datetime.now(dt.UTC)
            try:
                await interaction.edit_original_response(
                    embed=ui.progress_embed(job.view, update, now),
                    view=running_view,
                    allowed_mentions=ui.NO_MENTIONS,
                )
            except discord.HTTPException as exc:
                if exc.code != INVALID_WEBHOOK_TOKEN:
                    raise
                # The token outlived its 15 minutes: every later edit would fail the same way.
                log.info("job %s: interaction token expired; no more progress", job.job_id)
                token_expired = True

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
            await self.gate.record_submitted(job.job_id, task_id)

        outcome = JobOutcome.FAILED
        task_id: str | None = None
        try:
            await reporter.offer(self._waiting_update(job, None))
            async with self.slots.slot(request.user_id, on_position):
                ready = await self.engine.run_until_ready(
                    request.prompt, request.size, on_progress, on_submitted=on_submitted
                )
            # The slot caps tasks at Novita; the download needs none, so a slow image host never
            # keeps another member's submit waiting.
            task_id = ready.task_id
            result = await self.engine.fetch_image(ready, on_progress)
            await reporter.close()
            await asyncio.sleep(reporter.seconds_until_allowed())
            outcome = await self._deliver(job, interaction, result)
        except asyncio.CancelledError:
            outcome = JobOutcome.CANCELLED
            await reporter.close()  # no progress edit may land after the final one
            if job.cancelled_by is None:  # the bot is shutting down
                outcome = JobOutcome.FAILED  # not the member's doing: refund it
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
            policy = await self.gate.nsfw_policy(request.guild_id)
            if policy != "spoiler":
                await self._show(interaction, ui.withheld_embed(job.view), view=finished_view)
                return JobOutcome.SUCCEEDED
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
            return JobOutcome.FAILED
        filename = f"{result.task_id}.jpeg"
        note = "Recompressed to fit this server's upload limit." if recompressed else None
        embed = ui.result_embed(
            job.view,
            filename=filename,
            seconds=result.timings.total_seconds,
            spoiler=spoiler,
            note=note,
        )
        file = discord.File(io.BytesIO(data), filename=filename, spoiler=spoiler)
        try:
            await interaction.edit_original_response(
                embed=embed, attachments=[file], view=finished_view, allowed_mentions=ui.NO_MENTIONS
            )
        except discord.HTTPException as exc:
            if exc.code != INVALID_WEBHOOK_TOKEN:
                raise
            await self._deliver_late(interaction, job, embed, data, filename, spoiler)
        return JobOutcome.SUCCEEDED

    async def _deliver_late(
        self,
        interaction: discord.Interaction,
        job: ActiveJob,
        embed: discord.Embed,
        data: bytes,
        filename: str,
        spoiler: bool,
    ) -> None:
        """The interaction token died (15 min): post a normal message that pings the requester."""
        request = job.request
        channel = interaction.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            raise RuntimeError("interaction token expired and the channel is unknown")
        await channel.send(
            content=f"<@{request.user_id}>, your image is ready.",
            embed=embed,
            file=discord.File(io.BytesIO(data), filename=filename, spoiler=spoiler),
            view=self.views.finished(job.job_id, request.user_id),
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(request.user_id)]
            ),
        )

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
        return JobOutcome.FAILED, task_id

    async def _show(
        self,
        interaction: discord.Interaction,
        embed: discord.Embed,
        *,
        view: discord.ui.View | None = None,
    ) -> None:
        """Replace the status message (drops the buttons unless a view is given).

        Past the token's 15 minutes the message can no longer be edited; then the outcome is
        posted in the channel instead, pinging only the requester, so nobody is left waiting.
        """
        try:
            await interaction.edit_original_response(
                embed=embed, view=view, attachments=[], allowed_mentions=ui.NO_MENTIONS
            )
            return
        except discord.HTTPException as exc:
            if exc.code != INVALID_WEBHOOK_TOKEN:
                log.warning("could not update the status message", exc_info=True)
                return
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("interaction token expired and the channel is unknown")
            return
        requester = interaction.user.id
        try:
            await channel.send(
                content=f"<@{requester}>",
                embed=embed,
                view=view or discord.utils.MISSING,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(requester)]
                ),
            )
        except discord.HTTPException:
            log.warning("could not post the outcome in the channel either", exc_info=True)

    async def _finish_quietly(
        self, job: ActiveJob, outcome: JobOutcome, task_id: str | None, seconds: float
    ) -> None:
        try:
            await self.gate.finish(job.job_id, outcome, task_id=task_id, seconds=seconds)
        except Exception:
            log.exception("could not record the end of job %s", job.job_id)

    async def close(self) -> None:
        await self.jobs.cancel_all()
        if self._late_admissions:  # let refunds of late limit checks land before the DB closes
            await asyncio.gather(*self._late_admissions, return_exceptions=True)


def request_from_interaction(
    interaction: discord.Interaction,
    prompt: str,
    size: ImageSize,
    parent_job_id: int | None = None,
) -> GenerationRequest:
    user = interaction.user
    member = user if isinstance(user, discord.Member) else None
    permissions = interaction.permissions
    channel = interaction.channel
    channel_is_nsfw = bool(
        channel is not None and hasattr(channel, "is_nsfw") and channel.is_nsfw()
    )
    return GenerationRequest(
        prompt=prompt,
        size=size,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=user.id,
        user_name=user.display_name,
        role_ids=tuple(role.id for role in member.roles) if member else (),
        is_moderator=permissions.manage_guild,
        channel_is_nsfw=channel_is_nsfw,
        parent_job_id=parent_job_id,
        parent_channel_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
    )
