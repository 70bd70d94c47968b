"""The mock Novita's ``POST /v3/async/qwen-image-edit``: request checks and the edited picture.

Body (docs/novita-api.md §6): ``prompt`` (the instruction, required), ``image`` (required: a
link or base64 data, which Novita's docs leave open), ``seed`` (-1..2147483647, optional),
``output_format`` (``jpeg`` default, ``png``, ``webp``). The mock checks all of it:

* ``image`` as an ``http(s)://`` link is fetched, but only from the mock itself or from a
  ``host:port`` in ``MockNovitaConfig.edit_fetch_hosts`` (the fake image host, a loopback
  server of a test): the mock never reaches out anywhere else. Anything else (``data:…`` or
  bare base64) is decoded as base64. Either way the bytes must decode to a JPEG, PNG or WebP.
* ``MockNovitaConfig.accept_image_forms`` ({"url"}, {"base64"} or both) makes the mock behave
  like a Novita that understands only one form. A form it does not understand is refused the way
  such a server would: a link read as base64 is 400 INVALID_IMAGE_FORMAT; base64 read as a link is
  400 INVALID_REQUEST_BODY "image is invalid: …". Both say "image", which is how the client knows
  the other form may work (`bot.novita.edit.refuses_image_form`).
* An image over 4096 px a side is 400 IMAGE_EXCEEDS_MAX_RESOLUTION.

The task then runs like a generation (same timing model, by the input's pixel count); its result
is the input picture, at the input's size, with the instruction written on a band across it, in
the requested format.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from PIL import Image, ImageDraw, UnidentifiedImageError
from yarl import URL

from fakes.novita.images import _font, _wrap

EDIT_PATH: Final = "/v3/async/qwen-image-edit"
EDIT_TASK_TYPE: Final = "QWEN_IMAGE_EDIT"
IMAGE_FORMS: Final = frozenset({"url", "base64"})
OUTPUT_FORMATS: Final = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MAX_SEED: Final = 2_147_483_647
MAX_EDIT_SIDE: Final = 4096
MAX_SOURCE_BYTES: Final = 30 * 1024 * 1024
_ALLOWED_DECODERS: Final = ("JPEG", "PNG", "WEBP")
_FETCH_TIMEOUT_SECONDS: Final = 10.0


class EditRefused(Exception):
    """Answer with Novita's error envelope: `status`, `reason`, `message`."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}")


@dataclass(frozen=True)
class EditRequest:
    prompt: str
    image: bytes  # the decoded-and-checked source picture, as sent
    form: str     # "url" or "base64"
    width: int
    height: int
    seed: int
    output_format: str


def _invalid_body(message: str) -> EditRefused:
    return EditRefused(400, "INVALID_REQUEST_BODY", message)


def _host_port(url: URL) -> str:
    return f"{url.host}:{url.port}"


class SourceFetcher:
    """Fetches ``image`` links, from an allow-list of loopback ``host:port`` only."""

    def __init__(self, allowed: Callable[[], Iterable[str]]) -> None:
        self._allowed = allowed
        self._session: aiohttp.ClientSession | None = None
        self.fetched: list[str] = []  # every URL fetched, in order

    async def fetch(self, link: str) -> bytes:
        url = URL(link)
        if url.scheme not in ("http", "https") or _host_port(url) not in set(self._allowed()):
            raise _invalid_body("image is invalid: failed to download image from url")
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False)
        self.fetched.append(link)
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise _invalid_body(
                        f"image is invalid: downloading image failed with HTTP {response.status}"
                    )
                data = await _read_up_to(response, MAX_SOURCE_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError):
            raise _invalid_body("image is invalid: failed to download image from url") from None
        if len(data) > MAX_SOURCE_BYTES:
            raise EditRefused(400, "IMAGE_FILE_EXCEEDS_MAX_SIZE", "image file is too large")
        return data

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first `limit` bytes (`content.read(n)` stops at the first chunk)."""
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


def decode_base64_image(text: str) -> bytes:
    """Bytes of ``data:image/…;base64,…`` or of bare base64; `EditRefused` if neither."""
    payload = text
    if text.startswith("data:"):
        header, comma, payload = text.partition(",")
        if not comma or not header.startswith("data:image/") or not header.endswith(";base64"):
            raise EditRefused(400, "INVALID_IMAGE_FORMAT", "image is invalid: bad data URI")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise EditRefused(
            400, "INVALID_IMAGE_FORMAT", "image is invalid: not base64 encoded image data"
        ) from None


def image_size(data: bytes) -> tuple[int, int]:
    """Fully decode (blocking: callers use a thread); `EditRefused` unless a sane image."""
    try:
        with Image.open(io.BytesIO(data), formats=_ALLOWED_DECODERS) as probe:
            width, height = probe.size
            if max(width, height) > MAX_EDIT_SIDE:
                raise EditRefused(400, "IMAGE_EXCEEDS_MAX_RESOLUTION",
                                  f"image resolution exceeds {MAX_EDIT_SIDE}px")
            probe.load()
    except EditRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError):
        raise EditRefused(
            400, "INVALID_IMAGE_FORMAT", "image is invalid: unsupported or damaged image"
        ) from None
    return width, height


def prompt_body(raw: bytes, max_prompt_chars: int | None) -> tuple[dict[str, Any], str]:
    """The JSON object of a task-creating request and its prompt, checked as both Novita's
    txt2img and edit endpoints check them, or `EditRefused` (INVALID_REQUEST_BODY)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _invalid_body("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid_body("request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid_body("prompt is required")
    if max_prompt_chars is not None and len(prompt) > max_prompt_chars:
        raise _invalid_body(f"prompt must be at most {max_prompt_chars} characters")
    return body, prompt


def parse_edit_body(raw: bytes, max_prompt_chars: int | None) -> tuple[str, str, int, str]:
    """(prompt, image field, seed, output_format) from the JSON body, or `EditRefused`."""
    body, prompt = prompt_body(raw, max_prompt_chars)
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        raise _invalid_body("image is required")
    seed = body.get("seed", -1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not -1 <= seed <= MAX_SEED:
        raise _invalid_body(f"seed must be an integer between -1 and {MAX_SEED}")
    output_format = body.get("output_format", "jpeg")
    if output_format not in OUTPUT_FORMATS:
        raise _invalid_body("output_format must be one of jpeg, png, webp")
    return prompt, image.strip(), seed, output_format


def image_form(image: str) -> str:
    return "url" if image.lower().startswith(("http://", "https://")) else "base64"


def refuse_unaccepted_form(form: str, accepted: frozenset[str]) -> None:
    """What a Novita that reads only the other form would answer."""
    if form in accepted:
        return
    if form == "url":  # the link is read as base64 data
        raise EditRefused(400, "INVALID_IMAGE_FORMAT",
                          "image is invalid: not base64 encoded image data")
    raise _invalid_body("image is invalid: image must be a valid url")  # data read as a link


def render_edit(source: bytes, instruction: str, output_format: str, quality: int = 85) -> bytes:
    """The input picture (same size) with the instruction on a band across it (blocking)."""
    with Image.open(io.BytesIO(source), formats=_ALLOWED_DECODERS) as opened:
        picture = opened.convert("RGB")
    width, height = picture.size
    draw = ImageDraw.Draw(picture, "RGBA")
    text_size = max(10, min(width, height) // 16)
    font = _font(text_size)
    margin = max(4, min(width, height) // 20)
    lines = _wrap(f"edit: {instruction}", font, max(1, width - 2 * margin))[:4]
    line_height = int(text_size * 1.3)
    band_top = max(0, height - margin - line_height * len(lines) - margin)
    draw.rectangle((0, band_top, width, height), fill=(0, 0, 0, 140))
    y = band_top + margin // 2
    for line in lines:
        draw.text((margin, y), line, font=font, fill=(255, 255, 255, 255))
        y += line_height
    buffer = io.BytesIO()
    pillow_format = OUTPUT_FORMATS[output_format]
    options = {"quality": quality} if pillow_format in ("JPEG", "WEBP") else {}
    picture.save(buffer, pillow_format, **options)
    return buffer.getvalue()


class MockEdits:
    """The mock's edit endpoint state: which forms it reads, and the link fetcher."""

    def __init__(
        self,
        accept_forms: Iterable[str],
        fetch_hosts: Callable[[], Iterable[str]],
        max_prompt_chars: int | None = None,
    ) -> None:
        self.accept_forms = frozenset(accept_forms)
        unknown = self.accept_forms - IMAGE_FORMS
        if not self.accept_forms or unknown:
            raise ValueError(f"accept_image_forms must be a non-empty subset of {IMAGE_FORMS}")
        self.max_prompt_chars = max_prompt_chars
        self.fetcher = SourceFetcher(fetch_hosts)
        self.forms_seen: list[str] = []  # the form of every edit request, accepted or not

    async def read(self, raw: bytes) -> EditRequest:
        prompt, image, seed, output_format = parse_edit_body(raw, self.max_prompt_chars)
        form = image_form(image)
        self.forms_seen.append(form)
        refuse_unaccepted_form(form, self.accept_forms)
        data = await self.fetcher.fetch(image) if form == "url" else decode_base64_image(image)
        width, height = await asyncio.to_thread(image_size, data)
        return EditRequest(prompt, data, form, width, height, seed, output_format)

    async def close(self) -> None:
        await self.fetcher.close()
