"""One image job: submit → poll → download under a single monotonic deadline, with progress.

`run()` does it all. Callers that cap concurrent Novita tasks split it: `run_until_ready()`
(submit and poll, inside the cap) then `fetch_image()` (download and decode, outside it), so a
slow image host never holds a slot that another job's submit is waiting for. After a restart,
`resume_until_ready()` polls an already submitted task again (never submitting it twice), and
`fetch_image()` finishes it the same way.

The engine knows nothing about Discord. It talks to anything shaped like `TaskClient` (the real
`NovitaClient`, or a fake in tests), decides when to poll through a `PollStrategy`, learns how
long jobs take through a `DurationModel`, and reports `ProgressUpdate`s to an optional callback.
Cancelling the asyncio task running `run()` stops it at once: `CancelledError` propagates and no
further request is made.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bot.clock import Monotonic, Sleep
from bot.config import Settings
from bot.imaging import ImageSize
from bot.jobs.model import JobStage
from bot.jobs.polling.durations import DurationEstimate, DurationModel
from bot.jobs.polling.planner import AdaptivePlanner, PollState, PollStrategy, forecast_finish
from bot.jobs.polling.strategies import poll_strategy
from bot.jobs.progress import JobResult, JobTimings, ProgressCallback, ProgressUpdate
from bot.novita.errors import (
    ImageUnavailableError,
    JobTimeoutError,
    MalformedResponseError,
    NovitaError,
    TaskFailedError,
    TaskStoppedError,
    UnreadableRepliesError,
)
from bot.novita.models import GeneratedImage, TaskResult, TaskStatus, reads_as_terminal

log = logging.getLogger("bot.jobs")

T = TypeVar("T")
SubmittedHook = Callable[[str], Awaitable[None]]
# Creates the task and returns its task_id: how a job other than txt2img (an edit) is submitted.
SubmitTask = Callable[[], Coroutine[Any, Any, str]]

# This many unreadable task-result replies in a row end the job: Novita is not going to start
# making sense before the deadline, and the member should hear so now, not in five minutes.
MAX_UNREADABLE_REPLIES = 3


class TaskClient(Protocol):
    """What the engine needs from a Novita client (`bot.novita.client.NovitaClient` fits)."""

    async def submit(self, prompt: str, size: ImageSize) -> str: ...

    async def get_task(self, task_id: str) -> TaskResult: ...

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes: ...


@dataclass(frozen=True)
class JobSettings:
    poll_min_interval: float = 0.5
    poll_max_interval: float = 10.0
    deadline_seconds: float = 300.0
    # An estimated percent never passes this: only a finished download shows 100.
    estimate_cap_percent: float = 95.0
    # While waiting between sparse polls, refresh the estimated progress this often.
    progress_tick_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.poll_min_interval <= self.poll_max_interval:
            raise ValueError("need 0 < poll_min_interval <= poll_max_interval")
        if self.deadline_seconds <= 0 or self.progress_tick_seconds <= 0:
            raise ValueError("deadline_seconds and progress_tick_seconds must be positive")
        if not 0 < self.estimate_cap_percent < 100:
            raise ValueError("estimate_cap_percent must be between 0 and 100")

    @classmethod
    def from_settings(cls, settings: Settings) -> JobSettings:
        return cls(
            poll_min_interval=settings.poll_min_interval,
            poll_max_interval=settings.poll_max_interval,
            deadline_seconds=settings.job_deadline,
        )


@dataclass
class _Tracker:
    """What one job has seen so far; times are seconds since submit."""

    size: ImageSize
    submitted_at: float  # engine clock
    started_at: float    # engine clock, when run() began (before submit)
    deadline: float      # engine clock
    task_id: str
    durations: DurationModel | None = None  # learns from this job; None: the engine's own
    polls: int = 0
    status: TaskStatus | None = None
    last_queued_at: float | None = None
    first_processing_at: float | None = None
    last_pending_at: float = 0.0
    upstream_eta: float = 0.0
    upstream_percent: float = 0.0
    percent: float = 0.0

    def state(self, elapsed: float) -> PollState:
        return PollState(
            elapsed=elapsed,
            polls=self.polls,
            status=self.status,
            last_queued_at=self.last_queued_at,
            first_processing_at=self.first_processing_at,
            upstream_eta=self.upstream_eta,
            upstream_percent=self.upstream_percent,
        )


@dataclass(frozen=True)
class ReadyTask:
    """A task Novita reports finished, whose image is not downloaded yet (see `fetch_image`)."""

    task_id: str
    image: GeneratedImage
    nsfw_flagged: bool
    polls: int
    started_at: float    # engine clock, when run() began
    submitted_at: float  # engine clock
    noticed_at: float    # engine clock, when SUCCEED was seen
    deadline: float      # engine clock


class JobEngine:
    def __init__(
        self,
        client: TaskClient,
        settings: JobSettings,
        durations: DurationModel | None = None,
        *,
        planner: PollStrategy | None = None,
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.durations = durations if durations is not None else DurationModel()
        self.planner: PollStrategy = planner or AdaptivePlanner(
            min_interval=settings.poll_min_interval, max_interval=settings.poll_max_interval
        )
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls, client: TaskClient, settings: Settings, durations: DurationModel | None = None
    ) -> JobEngine:
        """The engine every front end runs: the configured limits and poller (`POLL_STRATEGY`)."""
        planner = poll_strategy(
            settings.poll_strategy, settings.poll_min_interval, settings.poll_max_interval
        )
        return cls(client, JobSettings.from_settings(settings), durations, planner=planner)

    async def run(
        self,
        prompt: str,
        size: ImageSize,
        on_progress: ProgressCallback | None = None,
        *,
        on_submitted: SubmittedHook | None = None,
        submit: SubmitTask | None = None,
        durations: DurationModel | None = None,
    ) -> JobResult:
        """Submit, poll and download: the whole job."""
        ready = await self.run_until_ready(prompt, size, on_progress, on_submitted=on_submitted,
                                           submit=submit, durations=durations)
        return await self.fetch_image(ready, on_progress)

    async def run_until_ready(
        self,
        prompt: str,
        size: ImageSize,
        on_progress: ProgressCallback | None = None,
        *,
        on_submitted: SubmittedHook | None = None,
        submit: SubmitTask | None = None,
        durations: DurationModel | None = None,
    ) -> ReadyTask:
        """Submit and poll until Novita reports the image made; nothing is downloaded.

        By default the job is txt2img of `prompt` at `size`. Another kind of job (an edit, see
        `bot.jobs.edits`) passes its own `submit` and the `durations` model it learns into;
        `size` then files it under a duration bucket (the size of the image it makes).
        """
        started = self._clock()
        deadline = started + self.settings.deadline_seconds
        await self._report(on_progress, ProgressUpdate(JobStage.SUBMITTING, 0.0, True, None, 0.0))
        creating = submit() if submit is not None else self.client.submit(prompt, size)
        task_id = await self._bounded(creating, deadline, None)
        log.info("task submitted task=%s size=%s", task_id, size.wire)
        if on_submitted is not None:
            try:
                await on_submitted(task_id)
            except Exception:  # a journal hiccup must not lose an already-paid task
                log.exception("on_submitted hook failed task=%s", task_id)
        job = _Tracker(size, self._clock(), started, deadline, task_id, durations)
        return await self._until_ready(job, on_progress)

    async def resume_until_ready(
        self,
        task_id: str,
        size: ImageSize,
        *,
        started_ago: float,
        on_progress: ProgressCallback | None = None,
        durations: DurationModel | None = None,
    ) -> ReadyTask:
        """Poll a task submitted `started_ago` seconds earlier until it is ready; never submits.

        The deadline still counts from the original start, so a task resumed too late fails
        with `JobTimeoutError` without another request. Download with `fetch_image`; an edit
        passes its `durations` model.
        """
        started = self._clock() - max(0.0, started_ago)
        job = _Tracker(size, started, started, started + self.settings.deadline_seconds, task_id,
                       durations)
        log.info("task resumed task=%s started_ago=%.1fs", task_id, started_ago)
        return await self._until_ready(job, on_progress)

    async def fetch_image(
        self, ready: ReadyTask, on_progress: ProgressCallback | None = None
    ) -> JobResult:
        """Download (and verify) the image of a finished task, within the job's deadline."""
        image_bytes = await self._bounded(
            self.client.download(ready.image, task_id=ready.task_id), ready.deadline,
            ready.task_id,
        )
        done = self._clock()
        await self._report(on_progress, ProgressUpdate(
            JobStage.DONE, 100.0, False, 0.0, done - ready.started_at, task_id=ready.task_id))
        log.info("task done task=%s polls=%d total=%.1fs", ready.task_id, ready.polls,
                 done - ready.started_at)
        return JobResult(
            task_id=ready.task_id,
            image=image_bytes,
            image_type=ready.image.image_type,
            nsfw_flagged=ready.nsfw_flagged,
            polls=ready.polls,
            timings=JobTimings(
                submit_seconds=ready.submitted_at - ready.started_at,
                wait_seconds=ready.noticed_at - ready.submitted_at,
                download_seconds=done - ready.noticed_at,
                total_seconds=done - ready.started_at,
            ),
        )

    # --- the job's life -------------------------------------------------------------------------

    async def _until_ready(
        self, job: _Tracker, on_progress: ProgressCallback | None
    ) -> ReadyTask:
        estimate = self._durations(job).expected(job.size)
        result, noticed = await self._wait_for_success(job, estimate, on_progress)
        if not result.images:
            raise ImageUnavailableError("the task succeeded but returned no image",
                                        task_id=job.task_id)
        await self._report(on_progress, self._update(
            job, JobStage.DOWNLOADING, estimate, noticed, downloading=True))
        return ReadyTask(
            task_id=job.task_id,
            image=result.images[0],
            nsfw_flagged=result.nsfw_flagged,
            polls=job.polls,
            started_at=job.started_at,
            submitted_at=job.submitted_at,
            noticed_at=noticed,
            deadline=job.deadline,
        )

    async def _wait_for_success(
        self, job: _Tracker, estimate: DurationEstimate, on_progress: ProgressCallback | None
    ) -> tuple[TaskResult, float]:
        """Poll until SUCCEED; returns the reply and when (engine clock) it was seen."""
        await self._report(
            on_progress, self._update(job, JobStage.SUBMITTED, estimate, self._clock()))
        unknown_logged = False
        unreadable = 0  # unreadable replies in a row
        while True:
            # Re-read the model each poll: jobs finishing meanwhile may have moved it.
            estimate = self._durations(job).expected(job.size)
            state = job.state(self._clock() - job.submitted_at)
            delay = self.planner.next_delay(state, estimate, self._rng)
            await self._pause(job, delay, estimate, on_progress)
            job.polls += 1
            try:
                result = await self._bounded(
                    self.client.get_task(job.task_id), job.deadline, job.task_id)
            except MalformedResponseError as exc:
                unreadable += 1
                log.warning("unreadable task-result reply %d/%d task=%s: %s", unreadable,
                            MAX_UNREADABLE_REPLIES, job.task_id, exc.message)
                if unreadable >= MAX_UNREADABLE_REPLIES:
                    raise UnreadableRepliesError(
                        f"{unreadable} task-result replies in a row could not be read "
                        f"(last: {exc.message})", task_id=job.task_id) from None
                continue
            except NovitaError as exc:
                if not exc.retryable:
                    raise
                log.warning("poll failed, will keep polling task=%s error=%s", job.task_id,
                            type(exc).__name__)
                continue
            unreadable = 0
            now = self._clock()
            since_submit = now - job.submitted_at
            job.upstream_eta, job.upstream_percent = result.eta_seconds, result.progress_percent
            if result.status is TaskStatus.SUCCEED:
                self._learn(job, since_submit)
                return result, now
            if result.status is TaskStatus.FAILED:
                raise TaskFailedError("the task failed", reason=result.reason or None,
                                      task_id=job.task_id)
            if result.status is TaskStatus.QUEUED:
                job.last_queued_at = since_submit
            elif result.status is TaskStatus.PROCESSING and job.first_processing_at is None:
                job.first_processing_at = since_submit
            elif result.status is TaskStatus.UNKNOWN and reads_as_terminal(result.raw_status):
                log.warning("unknown task status %r reads as final; ending the job task=%s "
                            "reason=%r", result.raw_status, job.task_id, result.reason)
                raise TaskStoppedError(f"the task ended with status {result.raw_status}",
                                       reason=result.raw_status, task_id=job.task_id)
            elif result.status is TaskStatus.UNKNOWN and not unknown_logged:
                unknown_logged = True
                log.warning("unknown task status %r, polling on until the deadline task=%s",
                            result.raw_status, job.task_id)
            job.status = result.status
            job.last_pending_at = since_submit
            stage = (JobStage.SUBMITTED if result.status is TaskStatus.QUEUED
                     else JobStage.GENERATING)
            await self._report(on_progress, self._update(job, stage, estimate, now))

    async def _pause(
        self,
        job: _Tracker,
        delay: float,
        estimate: DurationEstimate,
        on_progress: ProgressCallback | None,
    ) -> None:
        """Sleep `delay` (refreshing estimated progress meanwhile), or fail at the deadline."""
        wake = self._clock() + delay
        while True:
            now = self._clock()
            if now >= job.deadline:
                raise self._timed_out(job.task_id)
            if now >= wake:
                return
            step = min(wake, job.deadline) - now
            if on_progress is not None:
                step = min(step, self.settings.progress_tick_seconds)
            await self._sleep(step)
            if on_progress is not None and self._clock() < wake:
                stage = JobStage.SUBMITTED if job.status in (None, TaskStatus.QUEUED) else (
                    JobStage.GENERATING)
                await self._report(on_progress, self._update(job, stage, estimate, self._clock()))

    def _durations(self, job: _Tracker) -> DurationModel:
        return job.durations if job.durations is not None else self.durations

    def _learn(self, job: _Tracker, seen_at: float) -> None:
        """Teach the model the bracket the polls saw: finished in (last pending, seen_at]."""
        durations = self._durations(job)
        if job.last_queued_at is None:
            durations.record(job.size, job.last_pending_at, seen_at)
            return
        # Seen QUEUED: generation began after the last QUEUED poll and by the first PROCESSING
        # one (or by the finish, if PROCESSING was never seen).
        started_by = job.first_processing_at if job.first_processing_at is not None else seen_at
        durations.record(job.size, job.last_pending_at, seen_at,
                         started_after=job.last_queued_at, started_by=started_by,
                         queued=True)

    # --- progress -------------------------------------------------------------------------------

    def _update(
        self,
        job: _Tracker,
        stage: JobStage,
        estimate: DurationEstimate,
        now: float,
        *,
        downloading: bool = False,
    ) -> ProgressUpdate:
        since_submit = now - job.submitted_at
        forecast = forecast_finish(job.state(since_submit), estimate)
        cap = self.settings.estimate_cap_percent
        if job.upstream_percent > 0:
            percent, is_estimate = min(job.upstream_percent, 99.0), False
        else:
            percent, is_estimate = _estimated_percent(since_submit, forecast.mean, cap), True
        if downloading:
            percent = max(percent, min(cap + 1, 99.0))
        job.percent = max(job.percent, percent)  # never move backwards
        if job.upstream_eta > 0:
            eta: float | None = job.upstream_eta
        elif downloading:
            eta = 0.0
        elif since_submit <= forecast.mean + 2 * forecast.spread:
            eta = max(0.0, forecast.mean - since_submit)
        else:
            eta = None  # running long: no honest guess
        return ProgressUpdate(
            stage=stage,
            percent=job.percent,
            percent_is_estimate=is_estimate,
            eta_seconds=eta,
            elapsed_seconds=now - job.started_at,
            task_id=job.task_id,
        )

    async def _report(self, callback: ProgressCallback | None, update: ProgressUpdate) -> None:
        if callback is None:
            return
        try:
            outcome = callback(update)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:  # a broken progress display must never kill the job
            log.exception("progress callback failed task=%s", update.task_id)

    # --- deadline -------------------------------------------------------------------------------

    async def _bounded(
        self, call: Coroutine[Any, Any, T], deadline: float, task_id: str | None
    ) -> T:
        """Await an HTTP call, giving up when the job's deadline passes."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            call.close()
            raise self._timed_out(task_id)
        # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` returns the call's result
        # when a cancel arrives just as the call completes, so a Cancel (or shutdown) pressed as
        # a poll reply came in was lost and the job ran on to its deadline.
        try:
            async with asyncio.timeout(remaining):
                return await call
        except TimeoutError:
            raise self._timed_out(task_id) from None

    def _timed_out(self, task_id: str | None) -> JobTimeoutError:
        """What a job past its deadline ends with, wherever the deadline caught it."""
        return JobTimeoutError(f"no image after {self.settings.deadline_seconds:g} s",
                               task_id=task_id)


def _estimated_percent(elapsed: float, expected: float, cap: float) -> float:
    """Linear up to 90 % at the expected finish, then creeping towards `cap`, never reaching it."""
    if expected <= 0:
        return cap
    ratio = max(0.0, elapsed / expected)
    linear_part = min(90.0, cap)
    if ratio <= 1:
        return linear_part * ratio
    return linear_part + (cap - linear_part) * (1 - math.exp(-3 * (ratio - 1)))
