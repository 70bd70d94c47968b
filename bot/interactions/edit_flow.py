"""Edit and Remix: from a modal submission or `/imagine-edit` to a job on `GenerationService`.

Each flow acknowledges first (a public deferral, as `/imagine` does), then admits the job like
any generation: one image under every limit, the blocked-term check on the instruction (Edit) or
the edited prompt (Remix), priced by its kind (`bot.limits.pricing`). An Edit runs
Qwen-Image-Edit on the image (the job's lifecycle hands it to the `EditRunner` inside the upstream
slot); a Remix is a plain new generation. The answer is a new message naming its parent.

Stateless: built per use from the bot (`EditFlows.of`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.imaging import ImageSize, InvalidInputError, parse_size, validate_prompt
from bot.interactions.requests import request_from_interaction
from bot.interactions.transport.replies import reply_ephemeral
from bot.jobs.edits import EditJob, nominal_size
from bot.jobs.model import JobKind, JobRequest
from bot.limits.pricing import cost_microusd
from bot.novita.edit import EditSource
from bot.uploads import (
    InvalidUploadError,
    ParkedImage,
    UploadHeader,
    check_upload,
    inspect_upload,
)
from bot.wording import presentation as ui
from bot.wording.messages import describe_error

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.interactions.generation import GenerationService

log = logging.getLogger(__name__)

RESULT_GONE = "I no longer have the details of this image."
NO_IMAGE_HERE = "There is no image on this message to edit."


@dataclass(frozen=True)
class ParentImage:
    """The result an Edit starts from, as its button click saw it (the URL is freshly signed)."""

    job_id: int
    url: str
    jump_url: str
    width: int | None = None
    height: int | None = None

    @classmethod
    def of_message(cls, job_id: int, message: discord.Message | None) -> ParentImage | None:
        if message is None or not message.attachments:
            return None
        attachment = message.attachments[0]
        return cls(job_id, attachment.url, message.jump_url, attachment.width, attachment.height)


class EditFlows:
    def __init__(self, generation: GenerationService, settings: Settings) -> None:
        self.generation = generation
        self.settings = settings

    async def edit_result(
        self, interaction: discord.Interaction, parent: ParentImage, instruction_text: str
    ) -> None:
        """The Edit modal was submitted: an edit of the parent result's image."""
        instruction = await self._accept(interaction, instruction_text)
        if instruction is None:
            return
        size: ImageSize | None = None
        if parent.width and parent.height:
            size = nominal_size(parent.width, parent.height)
        else:  # Discord did not say: the result has its job's size
            size = await self._stored_size(interaction, parent.job_id, "edit lookup")
        if size is None:
            return
        job = EditJob(instruction, EditSource(url=parent.url), size)
        await self._start_edit(interaction, job, (ui.EDIT_OF, parent.jump_url))

    async def remix(
        self, interaction: discord.Interaction, job_id: int, prompt_text: str, jump_url: str
    ) -> None:
        """The Remix modal was submitted: a new generation of the edited prompt, same size."""
        prompt = await self._accept(interaction, prompt_text)
        if prompt is None:
            return
        size = await self._stored_size(interaction, job_id, f"remix of job {job_id}")
        if size is None:
            return
        request = self._request(interaction, prompt, size, JobKind.REMIX)
        await self.generation.admit_and_start(
            interaction, request, parent=(ui.REMIX_OF, jump_url)
        )

    async def edit_upload(
        self, interaction: discord.Interaction, image: discord.Attachment, instruction_text: str
    ) -> None:
        """`/imagine-edit`: an edit of the member's own upload, checked before anything is read."""
        try:
            instruction = validate_prompt(instruction_text)
            check_upload(image.filename, image.content_type, image.size, image.width, image.height)
        except InvalidInputError as exc:
            await reply_ephemeral(interaction, describe_error(exc) or str(exc))
            return
        generation = self.generation
        if not await generation.acknowledge(interaction):
            return
        try:
            header, parked = await self._read_and_park(image)
        except InvalidUploadError as exc:
            await generation.refuse(interaction, describe_error(exc) or str(exc))
            return
        except discord.HTTPException as exc:
            log.warning("could not read an upload to edit: %s", exc)
            await generation.refuse(
                interaction, "I couldn't read that image from Discord. Please try again.")
            return
        except OSError as exc:  # the temporary folder is full or gone: the host's to fix
            log.error("could not park an upload to edit (temporary folder): %s", exc)
            await generation.refuse(
                interaction, "I couldn't take that image just now. Please try again later.")
            return
        source = EditSource(url=image.url, parked=parked)
        job = EditJob(instruction, source, nominal_size(header.width, header.height))
        await self._start_edit(interaction, job, None)

    async def _read_and_park(
        self, image: discord.Attachment
    ) -> tuple[UploadHeader, ParkedImage]:
        """The upload read, checked and parked on disk; its bytes leave memory with this frame,
        so a job waiting its turn holds none of them."""
        data = await image.read()
        header = await inspect_upload(data)
        return header, await self.generation.lifecycle.collaborators.edits.parking.park(data)

    async def _start_edit(
        self,
        interaction: discord.Interaction,
        job: EditJob,
        parent: tuple[str, str] | None,
    ) -> None:
        started = None
        try:
            request = self._request(interaction, job.instruction, job.size, JobKind.EDIT)
            started = await self.generation.admit_and_start(
                interaction, request, edit=job, parent=parent)
        finally:
            if started is None:  # refused or failed before it ran: nothing will submit it
                job.release()

    async def _accept(self, interaction: discord.Interaction, text: str) -> str | None:
        """The member's words checked (pure), then the interaction acknowledged at once;
        None: the member has already been answered."""
        try:
            words = validate_prompt(text)
        except InvalidInputError as exc:
            await reply_ephemeral(interaction, describe_error(exc) or str(exc))
            return None
        if not await self.generation.acknowledge(interaction):
            return None
        return words

    def _request(
        self, interaction: discord.Interaction, text: str, size: ImageSize, kind: JobKind
    ) -> JobRequest:
        """The request as admission sees it: one image, at this kind's price."""
        return dataclasses.replace(
            request_from_interaction(interaction, text, size),
            kind=kind,
            cost_microusd=cost_microusd(kind, self.settings),
        )

    async def _stored_size(
        self, interaction: discord.Interaction, job_id: int, where: str
    ) -> ImageSize | None:
        """The size of an earlier job from the ledger; None when it is gone or unreadable (the
        member has then been told, privately)."""
        generation = self.generation
        try:
            stored = await generation.admissions.lookup(job_id)
        except Exception as exc:
            await generation.admission_failed(interaction, exc, where)
            return None
        try:
            size = parse_size(stored.size) if stored is not None else None
        except InvalidInputError:
            size = None
        if size is None:
            await generation.refuse(interaction, RESULT_GONE)
        return size
