"""Novita's wire format: reading reply bodies (task ids, task results, error bodies) and turning
transport failures into typed errors. Pure helpers for `NovitaClient`; never holds the key."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import aiohttp
from yarl import URL

from bot.config import Secret
from bot.novita.errors import (
    BadRequestError,
    ConnectionFailedError,
    ImageHostRefusedError,
    ImageUnavailableError,
    MalformedResponseError,
    UpstreamUnavailableError,
)
from bot.novita.models import TaskResult

EXCERPT_CHARS: Final = 200
_TASK_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_TAGS: Final = re.compile(r"<[^>]*>")
_BEARER: Final = re.compile(r"(?i)bearer\s+\S+")
_IMAGE_MAGIC: Final = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


@contextlib.contextmanager
def transport_errors(operation: str, task_id: str | None) -> Iterator[None]:
    """Turn aiohttp/socket failures into typed errors. `from None`: aiohttp's response errors
    carry request_info, whose repr includes our Authorization header."""
    try:
        yield
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise ConnectionFailedError(
            f"{operation}: could not connect ({type(exc).__name__})", task_id=task_id
        ) from None
    except TimeoutError:
        raise UpstreamUnavailableError(f"{operation}: timed out", task_id=task_id) from None
    except aiohttp.InvalidURL:
        raise BadRequestError(f"{operation}: invalid URL", task_id=task_id) from None
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailableError(
            f"{operation}: connection problem ({type(exc).__name__})", task_id=task_id
        ) from None


def redirect_target(url: URL, location: str | None, task_id: str | None) -> URL:
    if not location:
        raise ImageUnavailableError("image host redirected without a Location", task_id=task_id)
    try:
        return url.join(URL(location))
    except (TypeError, ValueError):
        raise ImageHostRefusedError(
            "image host redirected to a malformed URL", task_id=task_id
        ) from None


def content_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def looks_like_image(data: bytes) -> bool:
    if data.startswith(_IMAGE_MAGIC):
        return True
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def parse_error_body(raw: bytes, content_type: str) -> tuple[str | None, str]:
    """(`reason`, human detail) from a non-2xx body that may be JSON, HTML or empty."""
    if not raw.strip():
        return None, "empty reply"
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        text = raw[:2000].decode("utf-8", errors="replace")
        kind = "HTML" if "html" in content_type.lower() or "<html" in text.lower() else "text"
        return None, f"non-JSON {kind} reply: {text}"
    if not isinstance(data, Mapping):
        return None, f"unexpected JSON reply: {raw[:200].decode('utf-8', errors='replace')}"
    if isinstance(data.get("error"), Mapping):  # OpenAI-style envelope, in case it appears
        data = data["error"]
    reason = data.get("reason")
    message = data.get("message")
    reason_text = reason.strip().upper() if isinstance(reason, str) and reason.strip() else None
    detail = message if isinstance(message, str) and message.strip() else (reason_text or "")
    return reason_text, detail or "no message"


def excerpt(text: str, secret: Secret) -> str:
    """A short, single-line, secret-free piece of an upstream message."""
    key = secret.reveal()
    if key:
        text = text.replace(key, "[redacted]")
    text = _BEARER.sub("Bearer [redacted]", text)
    text = " ".join(_TAGS.sub(" ", text).split())
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1] + "…"
    return text


def _json_object(raw: bytes, what: str, task_id: str | None) -> Mapping[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedResponseError(f"{what} reply is not JSON", task_id=task_id) from None
    if not isinstance(data, Mapping):
        raise MalformedResponseError(f"{what} reply is not a JSON object", task_id=task_id)
    return data


def task_id_from_submit(raw: bytes) -> str:
    data = _json_object(raw, "submit", None)
    task_id = data.get("task_id")
    if not isinstance(task_id, str) or not _TASK_ID_PATTERN.match(task_id.strip()):
        raise MalformedResponseError("submit reply has no usable task_id")
    return task_id.strip()


def task_result_from(raw: bytes, task_id: str) -> TaskResult:
    data = _json_object(raw, "task-result", task_id)
    try:
        result = TaskResult.from_json(data, task_id=task_id)
    except (ValueError, TypeError) as exc:
        raise MalformedResponseError(f"task-result reply: {exc}", task_id=task_id) from None
    if result.task_id != task_id:  # never hand one person's image to another
        raise MalformedResponseError(
            f"task-result reply is for another task ({result.task_id})", task_id=task_id
        )
    return result
