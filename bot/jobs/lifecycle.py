"""A job's life after admission: journal it, wait for a slot, submit, poll, download, deliver,
and record how it ended — shown to the member through a `JobDisplay` the front end gives.

`JobLifecycle.start` runs an admitted job in its own task (tracked in `jobs`, so Cancel and
shutdown work):

1. its journal row is written (`bot.storage.repositories.journal`), so a restart can take it
   back;
2. it waits for an upstream slot (the fair queue), showing its place in line; then it is marked
   "submitting" (from here a restart never submits it again) and sent to Novita (a txt2img, or
   an edit through `EditRunner`); the task id is recorded once Novita has it. No job is sent
   before its mark is durable: a journal that cannot be written stops it, refunded;
3. the image is downloaded outside the slot, under a bound on how many jobs hold image bytes at
   once (`IMAGES_IN_FLIGHT`), and handed to the display the moment it is there; once posted,
   the "delivered" mark is the first thing written, so a restart never posts it again;
4. its end is recorded through the write outbox (retried until the database takes it) in the
   same transaction that deletes its journal row.

What it counts as follows what Novita bills: from the moment its submit request leaves
(`SUBMIT_SENT`), a job counts in spend whatever happens after, and a Cancel counts against its
member too; a failure not the member's doing is refunded to them but stays in spend
(`billed`), unless Novita refused the submit or reported the task FAILED (assumed unbilled).

A job taken back after a restart (`launch` with `job.resumed`) is polled again, never submitted
twice. On shutdown a running job is left in the journal and its member told the image follows
after the restart; a job that cannot be taken back is refunded to its member
(`stop_unresumable`), and counted in spend if its submit may have reached Novita.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from bot.clock import Monotonic
from bot.jobs.active import ActiveJob, ActiveJobs, JobDisplay, ReplyRecord
from bot.jobs.edits import EditJob, EditRunner
from bot.jobs.engine import JobEngine
from bot.jobs.fair_queue import JobSlots
from bot.jobs.model import JobKind, JobOutcome, JobRequest, JobStage, JobStatus, shard_of
from bot.jobs.progress import ProgressUpdate
from bot.novita.client import SUBMIT_SENT
from bot.novita.errors import ConnectionFailedError, NovitaError, TaskFailedError, TaskStoppedError
from bot.observability.metrics import BotMetrics
from bot.storage.reliability.journal_writes import (
    JournalUnavailableError,
    JournalWrites,
    SubmittedTasks,
)
from bot.storage.reliability.outage import OutageLog
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.repositories.journal import JobJournal, JournalEntry

log = logging.getLogger(__name__)

# On shutdown each running job gets this long to tell its member it was stopped.
SHUTDOWN_EDIT_TIMEOUT: Final = 5.0
# A job posting its result when shutdown starts gets this long to finish (not cut halfway).
DELIVERY_GRACE: Final = 10.0
# Journal writes on a job's way: a database that has not taken one by then is taken as down
# (before a submit the job stops; after, it runs on and its end waits in the outbox).
JOURNAL_WRITE_TIMEOUT: Final = 5.0
# How long a finished job waits for its end to be recorded before leaving it to the outbox.
FINISH_WAIT: Final = 5.0
# Downloads and uploads at once: enough to keep two cores and the network busy, few enough that
# ~0.4–0.8 MB images (and the copies an upload makes) stay well inside 200 MB.
IMAGES_IN_FLIGHT: Final = 24


def novita_may_bill(task_id: str | None, submit_sent: bool, error: BaseException | None) -> bool:
    """Whether Novita has (or may have) billed a job that ended with `error` (None: none).

    From the moment its submit request left, a job may be billed: Novita may have created the
    task even if its answer never came back. Not billed: a submit never sent, one Novita
    answered with a refusal (no task), or a task Novita reported FAILED (assumed unbilled).
    """
    if isinstance(error, TaskFailedError) and not isinstance(error, TaskStoppedError):
        return False
    if task_id is not None:
        return True
    if not submit_sent or isinstance(error, ConnectionFailedError):
        return False
    refused = isinstance(error, NovitaError) and error.status is not None and not (
        200 <= error.status < 300)
    return not refused


@dataclass(frozen=True)
class JobCollaborators:
    """Everything a job's life uses, built once by the composition root (`bot.app.composition`)."""

    engine: JobEngine
    edits: EditRunner
    slots: JobSlots
    journal: JobJournal
    journal_writes: JournalWrites  # the group-committed writes on a job's way to Novita
    submitted: SubmittedTasks  # task ids, written through the outbox
    outbox: WriteOutbox
    metrics: BotMetrics
    owner_id: str  # this process, as the journal names it
    shard_count: Callable[[], int]  # Discord's shard count now (a job is journaled by shard)
    clock: Monotonic = time.monotonic

    @classmethod
    def over(
        cls,
        journal: JobJournal,
        outbox: WriteOutbox,
        *,
        engine: JobEngine,
        edits: EditRunner,
        slots: JobSlots,
        metrics: BotMetrics,
        owner_id: str,
        shard_count: Callable[[], int],
        clock: Monotonic = time.monotonic,
    ) -> JobCollaborators:
        """The journal's write batchers built over `journal` and `outbox`."""
        return cls(
            engine=engine, edits=edits, slots=slots, journal=journal,
            journal_writes=JournalWrites(journal), submitted=SubmittedTasks(journal, outbox),
            outbox=outbox, metrics=metrics, owner_id=owner_id, shard_count=shard_count,
            clock=clock,
        )


class JobLifecycle:
    def __init__(self, collaborators: JobCollaborators) -> None:
        self.collaborators = collaborators
        self.jobs = ActiveJobs()
        self.outbox = collaborators.outbox
        self.outage: OutageLog = collaborators.outbox.outage
        # Jobs between download and upload (the only time a job holds image bytes).
        self._image_holders = asyncio.Semaphore(IMAGES_IN_FLIGHT)

    # ---- starting ------------------------------------------------------------------------------

    def start(
        self,
        job_id: int,
        request: JobRequest,
        display: JobDisplay,
        reply: ReplyRecord,
        *,
        edit: EditJob | None = None,
        parent_url: str | None = None,
    ) -> ActiveJob:
        """Run an admitted job (journaled first, so a restart can answer `reply`)."""
        job = ActiveJob(
            job_id=job_id, request=request, display=display,
            started_monotonic=self.collaborators.clock(), edit=edit, parent_url=parent_url,
        )
        return self.launch(job, self._journal_entry(job, reply))

    def launch(self, job: ActiveJob, record: JournalEntry | None = None) -> ActiveJob:
        """Run a job in its own task: a new one (`record` is its journal row to write first)
        or one taken back from the journal after a restart (`job.resumed`)."""
        self.jobs.add(job)
        self.collaborators.metrics.job_started()
        job.task = asyncio.create_task(self._run(job, record), name=f"job-{job.job_id}")
        return job

    def stop_unresumable(self, job: ActiveJob, why: str) -> ActiveJob:
        """A job taken back that cannot run again (a submit may or may not have reached Novita,
        or its details are gone): its member is told, and it is refunded, in its own task."""
        self.jobs.add(job)
        job.task = asyncio.create_task(self._stop(job, why), name=f"job-{job.job_id}")
        job.task.add_done_callback(lambda _: self.jobs.remove(job.job_id))
        return job

    def waiting_update(self, job: ActiveJob, position: int | None) -> ProgressUpdate:
        """What a job shows while it waits for an upstream slot (`position` 1 = next)."""
        return ProgressUpdate(
            stage=JobStage.WAITING,
            percent=0.0,
            percent_is_estimate=True,
            eta_seconds=None,
            elapsed_seconds=self._age(job),
            queue_position=position,
        )

    def _journal_entry(self, job: ActiveJob, reply: ReplyRecord) -> JournalEntry:
        request = job.request
        return JournalEntry(
            job_id=job.job_id,
            owner_id=self.collaborators.owner_id,
            shard_id=shard_of(request.guild_id, self.collaborators.shard_count()),
            channel_id=request.channel_id or 0,
            user_id=request.user_id,
            guild_id=request.guild_id,
            user_name=request.user_name,
            channel_is_nsfw=request.channel_is_nsfw,
            application_id=reply.application_id,
            interaction_id=reply.interaction_id,
            interaction_token=reply.token,
            interaction_at=reply.interaction_at,
            filesize_limit=reply.filesize_limit,
            kind=str(request.kind),
            parent_url=job.parent_url,
        )

    def _age(self, job: ActiveJob) -> float:
        return self.collaborators.clock() - job.started_monotonic

    # ---- the job's life ------------------------------------------------------------------------

    async def _run(self, job: ActiveJob, record: JournalEntry | None) -> None:
        use, request, resumed, display = (
            self.collaborators, job.request, job.resumed, job.display)
        log.info(
            "job %s id=%s guild=%s channel=%s user=%s size=%s",
            "start" if resumed is None else f"resume state={resumed.state}",
            job.job_id,
            request.guild_id,
            request.channel_id,
            request.user_id,
            request.size.wire,
        )

        async def on_position(position: int) -> None:
            await display.progress(self.waiting_update(job, position))

        known_task: str | None = None  # Novita's task id, once it has been seen

        async def on_submitted(task_id: str) -> None:
            # Novita has the task (queued in order, so it lands before the job's end).
            nonlocal known_task
            known_task = task_id
            use.submitted.add(job.job_id, task_id)

        def submit_sent() -> None:
            job.submit_sent = True

        outcome: JobOutcome = JobStatus.FAILED
        error: BaseException | None = None
        left_for_restart = False
        try:
            if record is not None:
                job.journaled = await self._journal_write(
                    f"journal job {job.job_id}", use.journal_writes.record(record))
            # No "Starting" progress: the front end already shows the job is on its way, and
            # under a burst the display's budget is better spent on queue positions.
            if resumed is not None and resumed.task_id is not None:
                # Novita has had it since before the restart: poll it again, never resubmit.
                known_task = resumed.task_id
                ready = await use.engine.resume_until_ready(
                    resumed.task_id, request.size, started_ago=self._age(job),
                    on_progress=display.progress,
                    durations=use.edits.durations if request.kind is JobKind.EDIT else None,
                )
            else:
                async with use.slots.slot(request.user_id, on_position):
                    use.metrics.queue_wait(self._age(job))
                    await self._mark_submitting(job)
                    SUBMIT_SENT.set(submit_sent)  # this task's own context: this job only
                    if job.edit is not None:
                        ready = await use.edits.run_until_ready(
                            job.edit, display.progress, on_submitted=on_submitted)
                    else:
                        ready = await use.engine.run_until_ready(
                            request.prompt, request.size, display.progress,
                            on_submitted=on_submitted,
                        )
            # The slot caps tasks at Novita; the download needs none, so a slow image host never
            # keeps another member's submit waiting.
            known_task = ready.task_id
            # Image bytes live from download to upload: only a few jobs hold them at once, so a
            # thousand jobs finishing together never hold a thousand images.
            async with self._image_holders:
                result = await use.engine.fetch_image(ready, display.progress)
                use.metrics.job_polls(result.polls)
                await display.end_progress()  # delivered at once, behind no progress
                job.delivering = True
                outcome = await display.deliver(result)
                del result
            # Shown: nothing may show over it now (no Cancel, no "restarting"), and the first
            # write is the mark that keeps a restart from posting it again.
            job.posted = job.finishing = True
            if outcome is JobStatus.SUCCEEDED and job.journaled:
                await self._journal_write(
                    f"mark job {job.job_id} delivered",
                    use.journal_writes.mark_delivered(job.job_id))
        except asyncio.CancelledError:
            if job.posted:  # shutdown while its delivery is recorded: its end still is
                raise
            outcome = JobStatus.CANCELLED
            await display.end_progress()  # no progress may land after the final word
            if job.cancelled_by is None:  # the process is shutting down
                last_word: Callable[[], Awaitable[None]]
                if job.journaled:
                    # Left in the journal: the next start takes it back (and delivers it).
                    left_for_restart = True
                    last_word = display.restarting
                else:  # nothing to take it back from: not the member's doing, so refund it
                    outcome = JobStatus.FAILED
                    last_word = display.interrupted
                # Say so rather than leave a progress bar (and a dead Cancel button) forever.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(last_word(), SHUTDOWN_EDIT_TIMEOUT)
                raise
            # Sent is sent: Novita bills it, so it counts; before that a cancel refunds.
            counted = novita_may_bill(known_task, job.submit_sent, None)
            await display.cancelled(job.cancelled_by, counted=counted)
        except Exception as exc:
            error = exc
            await display.end_progress()
            await display.failed(exc)
            # Refused, failed upstream or lost on the way: it does not count against the user
            # (whether it counts in spend is what Novita bills, below).
            outcome = JobStatus.REFUNDED if isinstance(exc, JournalUnavailableError) else (
                JobStatus.FAILED)
            known_task = (exc.task_id if isinstance(exc, NovitaError) else None) or known_task
        finally:
            job.finishing = True
            if job.edit is not None:  # an upload not submitted (cancelled, failed) goes now
                job.edit.release()
            seconds = self._age(job)
            if left_for_restart:
                log.info("job left for the next start id=%s task=%s", job.job_id, known_task)
                self.jobs.remove(job.job_id)
            else:
                billed = novita_may_bill(known_task, job.submit_sent, error)
                await self._conclude(job, outcome, known_task, seconds, billed=billed)

    async def _mark_submitting(self, job: ActiveJob) -> None:
        """The "submitting" mark, durable before anything is sent (else a restart could send it
        again): raises `JournalUnavailableError` when it did not land in time. A journal row
        that landed late is marked all the same."""
        marked = await self._journal_write(
            f"journal job {job.job_id}", self.collaborators.journal_writes.mark_submitting(
                job.job_id))
        if not marked:
            log.warning("job %s stopped before submitting: the journal could not be written",
                        job.job_id)
            raise JournalUnavailableError(f"job {job.job_id}: no durable submitting mark")
        job.journaled = True

    async def _conclude(
        self, job: ActiveJob, outcome: JobOutcome, task_id: str | None, seconds: float, *,
        billed: bool,
    ) -> None:
        request = job.request
        log.info(
            "job finish id=%s task=%s guild=%s user=%s size=%s duration=%.1fs outcome=%s "
            "billed=%s",
            job.job_id,
            task_id,
            request.guild_id,
            request.user_id,
            request.size.wire,
            seconds,
            outcome.value,
            billed,
        )
        self.collaborators.metrics.job_finished(outcome.value, seconds)
        # Recorded through the outbox: retried until the database takes it, even if a
        # shutdown cancels us meanwhile (the journal row stays until it lands).
        landed = self._record_outcome(job, outcome, task_id, {"total": seconds}, billed=billed)
        try:
            await asyncio.wait({landed}, timeout=FINISH_WAIT)
        finally:
            self.jobs.remove(job.job_id)

    async def _stop(self, job: ActiveJob, why: str) -> None:
        # Past "waiting" its submit may have reached Novita: refunded to the member (not their
        # doing), but counted in spend.
        billed = job.resumed is not None and job.resumed.state is not JobStage.WAITING
        log.warning("job %s cannot be taken back after the restart: %s; refunded (billed=%s)",
                    job.job_id, why, billed)
        await job.display.stopped_by_restart()
        landed = self._record_outcome(
            job, JobStatus.REFUNDED, None, None, error=why, billed=billed)
        await asyncio.wait({landed}, timeout=FINISH_WAIT)

    async def _journal_write(self, doing: str, write: Awaitable[object]) -> bool:
        """A journal write on the job's way; False (logged once per outage) if the database did
        not take it in time, or the write says it changed nothing (it returned False)."""
        try:
            # `asyncio.timeout`: unlike 3.11's `wait_for` it never drops a Cancel that arrives
            # as the write lands (the job would then go on to submit).
            async with asyncio.timeout(JOURNAL_WRITE_TIMEOUT):
                return await write is not False
        except Exception as error:
            self.outage.failed(error, doing)
            return False

    def _record_outcome(
        self,
        job: ActiveJob,
        outcome: JobOutcome,
        task_id: str | None,
        timings: dict[str, float] | None,
        error: str | None = None,
        *,
        billed: bool,
    ) -> asyncio.Future[bool]:
        journal = self.collaborators.journal
        return self.outbox.put(f"end of job {job.job_id}", lambda: journal.settle(
            job.job_id, outcome, task_id=task_id, timings=timings, error=error, billed=billed))

    # ---- shutdown ------------------------------------------------------------------------------

    async def stop_jobs(self) -> None:
        """Results being posted finish; every other job is left in the journal for the next
        start (its member told so)."""
        await self.jobs.cancel_all(DELIVERY_GRACE)

    async def close(self) -> None:
        """After `stop_jobs`: the journal's batchers stop and pending writes get a last chance."""
        await self.collaborators.journal_writes.close()
        await self.outbox.close()
