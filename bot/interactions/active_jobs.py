"""The jobs running in this process, by job id: for Cancel, in-flight metrics and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from bot.interactions.transport.status_message import StatusMessage
from bot.jobs.edits import EditJob
from bot.jobs.model import JobRequest
from bot.storage.repositories.journal import JournalEntry
from bot.wording import presentation as ui


@dataclass
class ActiveJob:
    job_id: int
    request: JobRequest
    view: ui.JobView
    status: StatusMessage
    task: asyncio.Task[None] | None = None
    cancelled_by: str | None = None
    finishing: bool = False  # past the point of no return: recording its outcome
    delivering: bool = False  # the result is being posted: shutdown lets it finish
    journaled: bool = False  # the journal has it: a restart can take it back
    resumed: JournalEntry | None = None  # taken back from the journal after a restart
    edit: EditJob | None = None  # an edit runs Qwen-Image-Edit on this input instead of txt2img
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
