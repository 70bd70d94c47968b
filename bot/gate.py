"""The seam between "someone asked for an image" and the rules about who may generate.

`GenerationGate` is what `GenerationService` asks before deferring (admit), while running
(record the upstream task id) and afterwards (finish: count it or refund it). The gate in use is
backed by the usage ledger (`bot.limits.gate.LedgerGate`).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

from bot.imaging import ImageSize


class JobOutcome(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # refunded: does not count against the user
    CANCELLED = "cancelled"  # counts once submitted (Novita still bills the task)
    REFUSED = "refused"  # never started: refunded


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    size: ImageSize
    guild_id: int | None
    channel_id: int | None
    user_id: int
    user_name: str
    role_ids: tuple[int, ...] = ()
    is_moderator: bool = False
    channel_is_nsfw: bool = False
    parent_job_id: int | None = None  # set for a re-roll
    parent_channel_id: int | None = None  # a thread's parent channel (for the allow-list)


@dataclass(frozen=True)
class Admission:
    allowed: bool
    job_id: int | None = None  # the ledger row reserved for this job
    reason: str | None = None  # why not, in a sentence for the member
    retry_at: dt.datetime | None = None


@dataclass(frozen=True)
class StoredJob:
    """What a Re-roll needs to know about an earlier job."""

    job_id: int
    prompt: str
    size: ImageSize
    user_id: int
    guild_id: int | None


class GenerationGate(Protocol):
    async def admit(self, request: GenerationRequest) -> Admission: ...

    async def record_submitted(self, job_id: int, task_id: str) -> None: ...

    async def finish(
        self,
        job_id: int,
        outcome: JobOutcome,
        *,
        task_id: str | None = None,
        seconds: float | None = None,
    ) -> None: ...

    async def lookup(self, job_id: int) -> StoredJob | None: ...

    async def nsfw_policy(self, guild_id: int | None) -> str: ...
