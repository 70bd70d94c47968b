"""Qwen-Image-Edit submissions: which form the `image` field takes, and the one fallback.

Novita documents `POST /v3/async/qwen-image-edit` with `image` "the image to generate an image
from" and does not say whether that is a link or base64 data (docs/novita-api.md §6); other hosts
of the model accept both. So, in `EditImageMode.AUTO`, the client sends the image's public URL
first and, when Novita answers that it cannot read the image *as sent* (`refuses_image_form`),
retries once with a `data:image/…;base64,` URI. The form that worked last goes first next time,
so a Novita that only takes one form costs one refused request per process, not one per edit.
`NOVITA_EDIT_IMAGE_MODE=url|base64` pins one form and never falls back.

The bytes for a data URI come from the `EditSource`: read back from where the edge parked a
member's checked upload (`bot.uploads.ParkedImage`, a temporary file), given directly, or
downloaded again from its URL through the client's guarded download (a bot result), which also
decodes them. Either way they exist in memory only during the submit that sends them.
"""

from __future__ import annotations

import base64
import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from yarl import URL

from bot.novita.errors import (
    BadRequestError,
    EditImageRejectedError,
    ImageContentRefusedError,
    NovitaError,
)
from bot.novita.models import GeneratedImage
from bot.novita.wire import looks_like_image

log = logging.getLogger("bot.novita")

EDIT_PATH: Final = "/v3/async/qwen-image-edit"
MIN_SEED: Final = -1  # -1 = random (Novita's default)
MAX_SEED: Final = 2_147_483_647
OUTPUT_FORMATS: Final = ("jpeg", "png", "webp")

# 400 reasons that say the image *as sent* could not be read: the other form may work.
# INVALID_REQUEST_BODY counts only when its message is about the image (a bad seed is not).
_FORM_REASONS: Final = frozenset({"INVALID_IMAGE_FORMAT"})
# 400 reasons about the image itself: the other form carries the same image, so no retry.
_IMAGE_REASONS: Final = frozenset({
    "INVALID_IMAGE_FORMAT", "INVALID_IMAGE_SIZE", "IMAGE_FILE_EXCEEDS_MAX_SIZE",
    "IMAGE_EXCEEDS_MAX_RESOLUTION",
})


class EditImageMode(enum.StrEnum):
    AUTO = "auto"      # URL first (or whichever form worked last), the other once on refusal
    URL = "url"        # only the public URL
    BASE64 = "base64"  # only a data URI


class ImageForm(enum.StrEnum):
    URL = "url"
    BASE64 = "base64"

    @property
    def other(self) -> ImageForm:
        return ImageForm.BASE64 if self is ImageForm.URL else ImageForm.URL


class HeldImage(Protocol):
    """Image bytes held outside memory until the submit needs them (`bot.uploads.ParkedImage`)."""

    async def read(self) -> bytes: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class EditSource:
    """The image to edit: a public URL Novita can fetch and/or its bytes.

    A bot result: `EditSource(url=<the result attachment's current URL>)`; its bytes, if a data
    URI is needed, are downloaded again through the guarded download. A member's upload:
    `EditSource(url=attachment.url, parked=<the bytes the edge read, checked and parked>)`.
    `data` gives the bytes directly, for a caller that submits at once.
    """

    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    parked: HeldImage | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.url and not self.data and self.parked is None:
            raise ValueError("an EditSource needs a URL or the image bytes")

    def release(self) -> None:
        """Let go of parked bytes (Novita has them, or the job ended); idempotent."""
        if self.parked is not None:
            self.parked.release()

    @property
    def host(self) -> str:
        """For logs: only the host (Discord CDN links carry signatures in the query)."""
        if not self.url:
            return "-"
        try:
            return URL(self.url).host or "?"
        except (TypeError, ValueError):
            return "?"


class EditTransport(Protocol):
    """What `EditSubmitter` needs from `NovitaClient`."""

    async def create_task(
        self, path: str, body: Mapping[str, Any], *, operation: str = "submit"
    ) -> str: ...

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes: ...


def media_type(data: bytes) -> str | None:
    """`image/jpeg`, `image/png` or `image/webp` from the magic bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_uri(data: bytes) -> str:
    kind = media_type(data)
    if kind is None or not looks_like_image(data):
        raise EditImageRejectedError("the image to edit is not a JPEG, PNG or WebP image")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def refuses_image_form(exc: NovitaError) -> bool:
    """Whether a submit error says Novita could not read the `image` field as sent."""
    if exc.status != 400 or not isinstance(exc, BadRequestError):
        return False
    if exc.reason in _FORM_REASONS:
        return True
    return exc.reason == "INVALID_REQUEST_BODY" and "image" in exc.message.lower()


def _as_edit_error(exc: NovitaError) -> NovitaError:
    """The edit-specific type for an image refusal; anything else unchanged."""
    common: dict[str, Any] = {"status": exc.status, "reason": exc.reason, "task_id": exc.task_id}
    if exc.reason == "ILLEGAL_IMAGE_CONTENT":
        return ImageContentRefusedError(exc.message, **common)
    if exc.reason in _IMAGE_REASONS or refuses_image_form(exc):
        return EditImageRejectedError(exc.message, **common)
    return exc


def edit_body(
    instruction: str, image: str, seed: int | None, output_format: str
) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": instruction, "image": image}
    if seed is not None and seed != MIN_SEED:  # -1 is the default: leave it out
        body["seed"] = seed
    body["output_format"] = output_format
    return body


class EditSubmitter:
    """Chooses the `image` form for each edit and falls back once (see the module docstring)."""

    def __init__(self, mode: EditImageMode = EditImageMode.AUTO) -> None:
        self.mode = mode
        self._first = ImageForm.URL
        self.fallbacks = 0  # retries in the other form (for tests and metrics)

    @property
    def preferred_form(self) -> ImageForm:
        if self.mode is EditImageMode.URL:
            return ImageForm.URL
        if self.mode is EditImageMode.BASE64:
            return ImageForm.BASE64
        return self._first

    async def submit(
        self,
        transport: EditTransport,
        instruction: str,
        source: EditSource,
        *,
        seed: int | None = None,
        output_format: str = "jpeg",
    ) -> str:
        """Create an edit task and return its task_id."""
        if not instruction.strip():
            raise ValueError("the edit instruction is empty")
        if seed is not None and not MIN_SEED <= seed <= MAX_SEED:
            raise ValueError(f"seed must be between {MIN_SEED} and {MAX_SEED}")
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}")
        first = self.preferred_form
        if first is ImageForm.URL and not source.url:
            if self.mode is EditImageMode.URL:
                raise BadRequestError(
                    "the image to edit has no public URL and NOVITA_EDIT_IMAGE_MODE=url"
                )
            first = ImageForm.BASE64
        try:
            task_id = await self._attempt(transport, instruction, source, first, seed,
                                          output_format)
        except NovitaError as exc:
            second = first.other
            if (
                self.mode is not EditImageMode.AUTO
                or not refuses_image_form(exc)
                or (second is ImageForm.URL and not source.url)
            ):
                raise _as_edit_error(exc) from None
            log.info("novita edit: image refused as %s (%s), retrying once as %s host=%s",
                     first, exc.reason, second, source.host)
            self.fallbacks += 1
            try:
                task_id = await self._attempt(transport, instruction, source, second, seed,
                                              output_format)
            except NovitaError as retry_exc:
                raise _as_edit_error(retry_exc) from None
            first = second
        if self.mode is EditImageMode.AUTO:
            self._first = first
        return task_id

    async def _attempt(
        self,
        transport: EditTransport,
        instruction: str,
        source: EditSource,
        form: ImageForm,
        seed: int | None,
        output_format: str,
    ) -> str:
        if form is ImageForm.URL:
            assert source.url is not None
            image = source.url
        else:
            image = data_uri(await self._bytes(transport, source))
        body = edit_body(instruction, image, seed, output_format)
        return await transport.create_task(EDIT_PATH, body, operation="edit")

    async def _bytes(self, transport: EditTransport, source: EditSource) -> bytes:
        if source.data:
            return source.data
        if source.parked is not None:
            return await source.parked.read()
        assert source.url is not None  # __post_init__: one of the two is set
        # The guarded download: public hosts only, capped, decoded before it is trusted.
        return await transport.download(
            GeneratedImage(url=source.url, url_ttl_seconds=0, image_type="", nsfw=None)
        )
