"""An edit's parked upload (`bot.uploads.ParkedImage`) through a job's life: let go the moment
Novita has it, and on every other way the job ends before that (cancel, shutdown, failure)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.jobs.active import ActiveJob
from bot.jobs.edits import EditJob
from bot.jobs.fair_queue import FairQueue
from bot.jobs.model import JobKind, JobStatus
from bot.jobs.progress import ProgressUpdate
from bot.novita.edit import EditSource
from bot.novita.errors import EditImageRejectedError
from bot.storage.database import Database
from bot.uploads import ParkedImage
from fakes.clock import ManualClock
from fakes.image_host import good_png
from tests.unit.jobs.lifecycle_support import (
    REPLY,
    SIZE,
    FakeDisplay,
    Harness,
    StalledClient,
    lifecycle_over,
)


@dataclass
class EditingClient(StalledClient):
    """Takes edits (reading the parked bytes, as a data URI would) and never finishes one."""

    sources: list[bytes] = field(default_factory=list)
    refuse: bool = False

    async def submit_edit(
        self, instruction: str, image: EditSource, *, seed: int | None = None,
        output_format: str = "jpeg",
    ) -> str:
        assert image.parked is not None
        self.sources.append(await image.parked.read())
        if self.refuse:
            raise EditImageRejectedError("not an image I can edit", status=400)
        return await self.submit(instruction, SIZE)


@dataclass
class LineDisplay(FakeDisplay):
    """Knows when its job was first shown a place in line (it is waiting for the slot)."""

    in_line: asyncio.Event = field(default_factory=asyncio.Event)

    async def progress(self, update: ProgressUpdate) -> None:
        await super().progress(update)
        if update.queue_position is not None:
            self.in_line.set()


@asynccontextmanager
async def one_slot(
    database: Database, client: EditingClient
) -> AsyncIterator[Harness]:
    """A lifecycle with one upstream slot: a second job waits in line for it."""
    async with lifecycle_over(database, client, client.clock, slots=FairQueue(1)) as h:
        yield h


async def start_edit(h: Harness, display: FakeDisplay) -> tuple[ActiveJob, ParkedImage]:
    job_id, request = await h.admit("make it night")
    parked = await h.lifecycle.collaborators.edits.parking.park(good_png())
    edit = EditJob("make it night", EditSource(parked=parked), SIZE)
    job = h.lifecycle.start(job_id, dataclasses.replace(request, kind=JobKind.EDIT), display,
                            REPLY, edit=edit)
    return job, parked


async def test_an_upload_is_let_go_once_submitted_while_the_job_still_polls(
    database: Database,
) -> None:
    client = EditingClient(ManualClock())
    async with one_slot(database, client) as h:
        job, parked = await start_edit(h, FakeDisplay())
        await client.polled.wait()  # submitted, and polling for as long as Novita takes

        assert client.sources == [good_png()]  # Novita got the bytes as they were parked
        assert parked.released and h.lifecycle.collaborators.edits.parking.count == 0
        assert job.job_id in h.lifecycle.jobs


async def test_cancel_before_submit_lets_the_upload_go(database: Database) -> None:
    client = EditingClient(ManualClock())
    async with one_slot(database, client) as h:
        parking = h.lifecycle.collaborators.edits.parking
        await start_edit(h, FakeDisplay())
        await client.polled.wait()  # the first edit holds the one slot
        display = LineDisplay()
        waiting, parked = await start_edit(h, display)
        await display.in_line.wait()
        assert parking.count == 1 and not parked.released

        assert h.lifecycle.jobs.cancel(waiting.job_id, "alice")
        assert waiting.task is not None
        await asyncio.wait({waiting.task})
        assert parked.released and parking.count == parking.parked_bytes == 0
        assert client.sources == [good_png()]  # never sent
        assert display.calls == ["end_progress", "cancelled by alice"]


async def test_shutdown_lets_a_waiting_upload_go(database: Database) -> None:
    client = EditingClient(ManualClock())
    async with one_slot(database, client) as h:
        parking = h.lifecycle.collaborators.edits.parking
        await start_edit(h, FakeDisplay())
        await client.polled.wait()
        display = LineDisplay()
        _, parked = await start_edit(h, display)
        await display.in_line.wait()

        await h.lifecycle.stop_jobs()
        assert parked.released and parking.count == 0
        assert display.calls == ["end_progress", "restarting"]  # left for the next start


async def test_a_refused_submit_lets_the_upload_go(database: Database) -> None:
    client = EditingClient(ManualClock(), refuse=True)
    async with one_slot(database, client) as h:
        display = FakeDisplay()
        job, parked = await start_edit(h, display)
        await h.lifecycle.jobs.wait_idle()

        assert parked.released and h.lifecycle.collaborators.edits.parking.count == 0
        assert display.calls == ["end_progress", "failed"]
        assert await h.status(job.job_id) is JobStatus.FAILED
