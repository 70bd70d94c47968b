"""The jobs running in this process, by job id (for Cancel, in-flight metrics and shutdown), and
`JobDisplay`: what the lifecycle needs from wherever a member watches their job.

The core never says how a job looks; it tells its display what happened (progress, the result,
a failure, a cancel, a restart) and the front end (the Discord edge: `bot.interactions.display`)
words and shows it. A job taken back after a restart gets a display rebuilt from its journal row
(`DisplayRebuilder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from bot.jobs.edits import EditJob
from bot.jobs.model import JobOutcome, JobRequest
from bot.jobs.progress import JobResult, ProgressUpdate
from bot.storage.repositories.journal import JournalEntry


class JobDisplay(Protocol):
    """How one job is shown to its member (each call is best effort: a display that cannot be
    reached logs it; the job's outcome is recorded either way)."""

    async def progress(self, update: ProgressUpdate) -> None:
        """The job moved on (a queue position, a stage, a percent); may be thinned out."""

    async def end_progress(self) -> None:
        """No more progress: the next call shows how the job ended."""

    async def deliver(self, result: JobResult) -> JobOutcome:
        """Show the finished image (or withhold it); says whether the job succeeded."""

    async def failed(self, error: Exception) -> None:
        """The job failed (refused upstream, timed out, a bug)."""

    async def cancelled(self, by_name: str, *, counted: bool) -> None:
        """A member pressed Cancel; `counted`: its submit had already been sent, so it counts
        (Novita bills it) — before that a cancel refunds it."""

    async def restarting(self) -> None:
        """The process is stopping; the job stays journaled and follows after the restart."""

    async def interrupted(self) -> None:
        """The process is stopping and the job cannot be taken back (not journaled)."""

    async def stopped_by_restart(self) -> None:
        """Taken back after a restart but not resumable: stopped, not counted against the
        member."""


class DisplayRebuilder(Protocol):
    """Rebuilds the display of a job taken back from the journal (from its stored reply)."""

    @property
    def token_lifetime(self) -> dt.timedelta:
        """How long a stored reply token stays usable; older ones leave the database."""

    def rebuild(
        self, entry: JournalEntry, request: JobRequest, started_at: dt.datetime
    ) -> JobDisplay: ...


@dataclass(frozen=True)
class ReplyRecord:
    """What the journal keeps of the interaction a job answers, so a restart can answer it."""

    application_id: int | None
    interaction_id: int | None
    token: str | None
    interaction_at: dt.datetime | None
    filesize_limit: int | None


@dataclass(eq=False)
class ActiveJob:
    job_id: int
    request: JobRequest
    display: JobDisplay
    started_monotonic: float  # the lifecycle's monotonic clock, when the member asked
    task: asyncio.Task[None] | None = None
    cancelled_by: str | None = None
    finishing: bool = False  # past the point of no return: recording its outcome
    delivering: bool = False  # the result is being posted: shutdown lets it finish
    posted: bool = False  # the display showed the result: nothing may show over it
    submit_sent: bool = False  # a submit request left for Novita: it may bill it from here
    journaled: bool = False  # the journal has it: a restart can take it back
    resumed: JournalEntry | None = None  # taken back from the journal after a restart
    edit: EditJob | None = None  # an edit runs Qwen-Image-Edit on this input instead of txt2img
    parent_url: str | None = None  # an Edit's or Remix's parent result, journaled with the job


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

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

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

    async def cancel_all(self, delivery_grace: float = 0.0) -> None:
        """Stop every job and wait until each has finished its last words (jobs stay registered
        until then, so shutdown never closes the database under a job's last write).

        Jobs already posting their result get `delivery_grace` seconds to finish first: an
        upload cut halfway would be posted again by the next start.
        """
        delivering = [
            job.task for job in self._jobs.values()
            if job.task and not job.task.done() and (job.delivering or job.finishing)
        ]
        if delivering and delivery_grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*delivering, return_exceptions=True), delivery_grace
                )
        tasks = [job.task for job in self._jobs.values() if job.task and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
