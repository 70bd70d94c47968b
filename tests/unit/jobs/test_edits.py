"""Edits through the job engine, against the mock Novita over loopback sockets (time-scaled):
same polling, progress, deadline and download as generations, their own duration model; a
parked upload is let go the moment Novita has it."""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from bot.config import Secret
from bot.imaging import ImageSize
from bot.jobs.edits import EditJob, EditRunner, nominal_size
from bot.jobs.engine import JobEngine, JobSettings
from bot.jobs.model import JobStage
from bot.jobs.polling.durations import DurationModel
from bot.jobs.progress import ProgressUpdate
from bot.novita.client import NovitaClient
from bot.novita.edit import EditSource
from bot.novita.errors import EditImageRejectedError, JobTimeoutError, TaskFailedError
from bot.novita.retry import RetryPolicy
from fakes.clock import ScaledClock
from fakes.image_host import FakeImageHost, noise_png
from fakes.novita.server import MockNovita, MockNovitaConfig
from tests.retained_memory import BotAllocations

pytestmark = pytest.mark.timeout(30)

SCALE = 0.01  # a 20 s job takes 0.2 s


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 90, 40)).save(buffer, "PNG")
    return buffer.getvalue()


@contextlib.asynccontextmanager
async def edit_stack(
    deadline: float = 120.0, **mock_options: Any
) -> AsyncIterator[tuple[EditRunner, MockNovita, FakeImageHost]]:
    async with FakeImageHost() as host:
        config = MockNovitaConfig(time_scale=SCALE, queue_probability=0.0, seed=4,
                                  edit_fetch_hosts=(host.host_port,), **mock_options)
        async with MockNovita(config) as mock, NovitaClient(
            Secret(config.api_key), mock.base_url, max_submits_per_minute=0,
            retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001),
            trusted_image_hosts=[mock.base_url.removeprefix("http://"), host.host_port],
        ) as client:
            clock = ScaledClock(SCALE)
            engine = JobEngine(client, JobSettings(deadline_seconds=deadline), clock=clock,
                               sleep=clock.sleep, rng=random.Random(3))
            yield EditRunner(engine, client, DurationModel()), mock, host


async def test_an_edit_runs_end_to_end_and_learns_in_its_own_model() -> None:
    async with edit_stack() as (runner, mock, _):
        updates: list[ProgressUpdate] = []
        source = png(600, 400)
        job = EditJob("turn it blue", EditSource(data=source), nominal_size(600, 400))
        ready = await runner.run_until_ready(job, updates.append)
        result = await runner.engine.fetch_image(ready, updates.append)

        record = mock.tasks[result.task_id]
        assert record.source_image == source and record.prompt == "turn it blue"
        assert runner.durations.expected(ImageSize(600, 400)).observations == 1  # its bucket
        with Image.open(io.BytesIO(result.image)) as image:
            assert (image.format, image.size) == ("JPEG", (600, 400))
        assert result.polls <= 6
        phases = [update.stage for update in updates]
        assert phases[0] is JobStage.SUBMITTING and phases[-1] is JobStage.DONE
        assert JobStage.DOWNLOADING in phases
        assert runner.durations.expected(job.size).observations == 1
        assert runner.engine.durations.expected(job.size).observations == 0


async def test_an_edit_splits_like_a_generation_and_falls_back_to_base64() -> None:
    async with edit_stack(accept_image_forms=frozenset({"base64"})) as (runner, mock, host):
        job = EditJob("add fog", EditSource(url=host.url("good.jpeg")), nominal_size(64, 48))
        submitted: list[str] = []

        async def on_submitted(task_id: str) -> None:
            submitted.append(task_id)

        ready = await runner.run_until_ready(job, on_submitted=on_submitted)
        assert submitted == [ready.task_id]
        assert mock.tasks[ready.task_id].downloads == 0
        result = await runner.engine.fetch_image(ready)
        assert mock.edits.forms_seen == ["url", "base64"]
        # The bucket a tiny image is filed under learned its finish:
        assert runner.durations.expected(ImageSize(256, 256)).observations == 1
        with Image.open(io.BytesIO(result.image)) as image:
            assert image.size == (64, 48)  # while the picture keeps its own size


async def test_an_edit_resumes_after_a_restart_into_the_edit_model() -> None:
    async with edit_stack() as (runner, mock, _):
        size = nominal_size(512, 512)
        task_id = await runner.client.submit_edit("make it night", EditSource(data=png(512, 512)))
        ready = await runner.engine.resume_until_ready(
            task_id, size, started_ago=1.0, durations=runner.durations)
        result = await runner.engine.fetch_image(ready)
        assert result.task_id == task_id and mock.tasks[task_id].downloads == 1
        assert runner.durations.expected(size).observations == 1
        assert runner.engine.durations.expected(size).observations == 0


async def test_an_edit_obeys_the_deadline() -> None:
    async with edit_stack(deadline=5.0) as (runner, mock, _):
        job = EditJob("x [mock:never-finish]", EditSource(data=png(300, 300)),
                      nominal_size(300, 300))
        with pytest.raises(JobTimeoutError):
            await runner.run_until_ready(job)
        assert len(mock.tasks) == 1


async def test_a_failed_edit_is_a_task_failure() -> None:
    async with edit_stack() as (runner, _, _):
        job = EditJob("x [mock:failed]", EditSource(data=png(300, 300)), nominal_size(300, 300))
        with pytest.raises(TaskFailedError):
            await runner.run_until_ready(job)


async def test_a_parked_upload_is_let_go_the_moment_novita_has_it() -> None:
    # A Novita that reads only base64: the submit reads the parked bytes back and sends them.
    async with edit_stack(deadline=1200.0, accept_image_forms=frozenset({"base64"})) as (
        runner, mock, _,
    ):
        parking = runner.parking
        with BotAllocations() as held:
            upload = noise_png(400)  # the mock takes bodies up to 1 MiB
            size, digest = len(upload), hashlib.sha256(upload).digest()
            parked = await parking.park(upload)
            del upload  # as the edge does: from here the file is the only copy
            file = parked._file
            assert file is not None
            job = EditJob("turn it blue", EditSource(parked=parked), nominal_size(400, 400))
            at_submit: list[tuple[bool, int, int]] = []

            async def on_submitted(task_id: str) -> None:
                at_submit.append((file.closed, parking.count, held.now()))
                held.stop()  # polling need not be traced

            ready = await runner.run_until_ready(job, on_submitted=on_submitted)
        # When Novita had accepted it the file was closed (gone: it never had a name) and the
        # bytes read back for the data URI (~0.6 MB as base64) were no longer held anywhere.
        [(closed, still_parked, bot_bytes)] = at_submit
        assert closed and still_parked == 0 and bot_bytes == 0, (bot_bytes, size)
        assert parked.released and parking.parked_bytes == 0 and parking.total_parked == 1
        assert hashlib.sha256(mock.tasks[ready.task_id].source_image).digest() == digest


async def test_an_edit_of_a_result_holds_its_image_only_during_the_submit() -> None:
    # The same rule for a result: its image is fetched again for a data URI inside the submit,
    # and nothing of it is held once Novita has the task.
    async with edit_stack(deadline=1200.0, accept_image_forms=frozenset({"base64"})) as (
        runner, mock, host,
    ):
        job = EditJob("add fog", EditSource(url=host.url("noise.png")), nominal_size(400, 400))
        with BotAllocations() as held:
            at_submit: list[int] = []

            async def on_submitted(task_id: str) -> None:
                at_submit.append(held.now())
                held.stop()

            ready = await runner.run_until_ready(job, on_submitted=on_submitted)
        assert at_submit == [0]
        assert mock.edits.forms_seen == ["url", "base64"]  # downloaded once, for the data URI
        assert mock.tasks[ready.task_id].source_image == noise_png()


async def test_a_parked_upload_is_let_go_when_its_submit_fails() -> None:
    # No URL to fall back on, and a Novita that reads only links: the submit is refused.
    async with edit_stack(accept_image_forms=frozenset({"url"})) as (runner, mock, _):
        parked = await runner.parking.park(png(300, 300))
        job = EditJob("add fog", EditSource(parked=parked), nominal_size(300, 300))
        with pytest.raises(EditImageRejectedError):
            await runner.run_until_ready(job)
        assert parked.released and runner.parking.count == 0
        assert mock.edits.forms_seen == ["base64"] and not mock.tasks


def test_nominal_size_clamps_into_qwen_sides() -> None:
    assert nominal_size(1024, 768) == ImageSize(1024, 768)
    assert nominal_size(100, 3000) == ImageSize(256, 1536)
    with pytest.raises(ValueError):
        nominal_size(0, 10)
