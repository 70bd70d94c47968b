"""Typed, immutable views of Novita's task-result replies. Tolerant of unknown fields/statuses."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TaskStatus(enum.Enum):
    QUEUED = "TASK_STATUS_QUEUED"
    PROCESSING = "TASK_STATUS_PROCESSING"
    SUCCEED = "TASK_STATUS_SUCCEED"
    FAILED = "TASK_STATUS_FAILED"
    UNKNOWN = "UNKNOWN"  # anything Novita adds later: keep polling until our deadline

    @classmethod
    def from_wire(cls, value: object) -> TaskStatus:
        for status in cls:
            if status.value == value:
                return status
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCEED, TaskStatus.FAILED)


# Words that mark a status we do not know as final: TASK_STATUS_CANCELED, …_EXPIRED, …_ERROR.
_TERMINAL_WORDS = ("FAIL", "CANCEL", "EXPIRE", "ERROR", "ABORT", "REJECT", "TIMEOUT", "TIMED_OUT",
                   "DELETE", "TERMINATE", "KILLED")


def reads_as_terminal(raw_status: str) -> bool:
    """Whether an unknown status reads as the end of the task (no image will come)."""
    upper = raw_status.upper()
    return any(word in upper for word in _TERMINAL_WORDS)


@dataclass(frozen=True)
class NsfwDetection:
    """`nsfw_detection_result`: `{valid, confidence}` where detection ran; often null or {}."""

    flagged: bool
    confidence: float | None


@dataclass(frozen=True)
class GeneratedImage:
    url: str
    url_ttl_seconds: int
    image_type: str
    nsfw: NsfwDetection | None


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    status: TaskStatus
    raw_status: str
    reason: str
    eta_seconds: float
    progress_percent: float
    task_type: str
    images: tuple[GeneratedImage, ...]
    has_nsfw_contents: bool

    @property
    def nsfw_flagged(self) -> bool:
        flagged_images = (i.nsfw is not None and i.nsfw.flagged for i in self.images)
        return self.has_nsfw_contents or any(flagged_images)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], task_id: str = "") -> TaskResult:
        """Parse a task-result body. Raises `ValueError` (or TypeError) when the shape is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("task-result reply is not a JSON object")
        task = data.get("task")
        if not isinstance(task, Mapping):
            raise ValueError("task-result reply has no 'task' object")
        status_raw = task.get("status")
        raw_status = status_raw if isinstance(status_raw, str) else ""
        images_raw = data.get("images") or []
        if not isinstance(images_raw, list):
            raise ValueError("'images' is not a list")
        extra = data.get("extra") if isinstance(data.get("extra"), Mapping) else {}
        assert isinstance(extra, Mapping)
        flags = extra.get("has_nsfw_contents") or []
        has_nsfw = any(bool(flag) for flag in flags) if isinstance(flags, list) else bool(flags)
        return cls(
            task_id=str(task.get("task_id") or task_id),
            status=TaskStatus.from_wire(raw_status),
            raw_status=raw_status,
            reason=str(task.get("reason") or ""),
            eta_seconds=_number(task.get("eta")),
            progress_percent=max(0.0, min(100.0, _number(task.get("progress_percent")))),
            task_type=str(task.get("task_type") or ""),
            images=tuple(_image(item) for item in images_raw if isinstance(item, Mapping)),
            has_nsfw_contents=has_nsfw,
        )


def _number(value: object) -> float:
    """Numbers arrive as ints, floats, strings or null."""
    if value is None or value == "":
        return 0.0
    try:
        number = float(str(value))
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0  # "nan"/"inf" would poison arithmetic


def _image(item: Mapping[str, Any]) -> GeneratedImage:
    url = item.get("image_url")
    if not isinstance(url, str) or not url:
        raise ValueError("image entry has no image_url")
    nsfw_raw = item.get("nsfw_detection_result")
    nsfw = None
    if isinstance(nsfw_raw, Mapping) and "valid" in nsfw_raw:
        confidence = nsfw_raw.get("confidence")
        nsfw = NsfwDetection(
            flagged=bool(nsfw_raw.get("valid")),
            confidence=None if confidence is None else _number(confidence),
        )
    return GeneratedImage(
        url=url,
        url_ttl_seconds=int(_number(item.get("image_url_ttl"))),
        image_type=str(item.get("image_type") or "jpeg"),
        nsfw=nsfw,
    )
