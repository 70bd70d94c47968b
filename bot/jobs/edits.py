"""Edits run through the same `JobEngine` as generations: same polling, progress, deadline,
download and decoding. Only two things differ, and `EditRunner` supplies them:

* the submit: `submit_edit(instruction, source)` instead of txt2img;
* the duration model. Qwen-Image-Edit is a different model whose timing is unknown (Novita
  publishes none), and an edit's cost depends on its input as much as on its output size, so
  mixing edit finishes into the generation model would skew both forecasts. Edits get their own
  `DurationModel` instance (same size buckets, same censoring-aware fit): it starts from the
  generation prior, which is the best guess available, and its regime-change detection moves it
  to the edit model's real timing within a few finishes. It is saved under its own key
  (`EDIT_DURATIONS_KEY`, see `bot.jobs.polling.keeper`).

A member's upload waits parked on disk (`bot.uploads.ParkedImage`), never in memory, and the
runner releases it the moment the submit returns: a job polling for minutes holds no image bytes.

A Remix is not an edit: it is a new generation (`JobEngine.run_until_ready`) of an edited prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from bot.imaging import MAX_SIDE, MIN_SIDE, ImageSize
from bot.jobs.engine import JobEngine, ReadyTask, SubmittedHook
from bot.jobs.polling.durations import DurationModel
from bot.jobs.progress import ProgressCallback
from bot.novita.edit import EditSource
from bot.uploads import ParkedImages

EDIT_DURATIONS_KEY: Final = "qwen-image-edit"


class EditClient(Protocol):
    """What an edit needs from the Novita client (`NovitaClient` fits)."""

    async def submit_edit(
        self,
        instruction: str,
        image: EditSource,
        *,
        seed: int | None = None,
        output_format: str = "jpeg",
    ) -> str: ...


def nominal_size(width: int, height: int) -> ImageSize:
    """The `ImageSize` an edit of a `width`×`height` image is filed under (its duration bucket
    and the size a job reports). The result comes back at the input's size; an upload may be
    outside Qwen-Image's 256–1536 sides, so each side is clamped into that range."""
    if width <= 0 or height <= 0:
        raise ValueError("an image has positive sides")
    return ImageSize(min(max(width, MIN_SIDE), MAX_SIDE), min(max(height, MIN_SIDE), MAX_SIDE))


@dataclass(frozen=True)
class EditJob:
    instruction: str
    source: EditSource
    size: ImageSize  # `nominal_size` of the input image
    seed: int | None = None

    def release(self) -> None:
        """Let go of the source's parked bytes (submitted, or the job ended); idempotent."""
        self.source.release()


class EditRunner:
    """Runs `EditJob`s on a `JobEngine` like generations: `run_until_ready` inside the upstream
    slot, then the engine's `fetch_image` outside it; a resumed edit polls on `durations`."""

    def __init__(
        self,
        engine: JobEngine,
        client: EditClient,
        durations: DurationModel | None = None,
        parking: ParkedImages | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.durations = durations if durations is not None else DurationModel()
        # Members' uploads waiting for their submit (the edge parks them here).
        self.parking = parking if parking is not None else ParkedImages()

    async def run_until_ready(
        self,
        job: EditJob,
        on_progress: ProgressCallback | None = None,
        *,
        on_submitted: SubmittedHook | None = None,
    ) -> ReadyTask:
        async def submit() -> str:
            try:
                return await self.client.submit_edit(job.instruction, job.source, seed=job.seed)
            finally:  # Novita has the image (or never will from this job): not needed again
                job.release()

        return await self.engine.run_until_ready(
            job.instruction,
            job.size,
            on_progress,
            on_submitted=on_submitted,
            submit=submit,
            durations=self.durations,
        )
