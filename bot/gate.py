"""The seam between "someone asked for an image" and the rules about who may generate.

`GenerationGate` is what `GenerationService` asks before deferring (admit), while running
(record the upstream task id) and afterwards (finish: count it or refund it). The real gate is
backed by the usage ledger (`bot.limits`); `OpenGate` lets everyone through and keeps job records
in memory, for tests and the offline demo.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
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


class OpenGate:
    """Admits everyone; remembers jobs in memory. For tests and the demo, not production."""

    def __init__(self, nsfw_policy: str = "block") -> None:
        self._ids = itertools.count(1)
        self._jobs: dict[int, StoredJob] = {}
        self.outcomes: dict[int, JobOutcome] = {}
        self._nsfw_policy = nsfw_policy

    async def admit(self, request: GenerationRequest) -> Admission:
        job_id = next(self._ids)
        self._jobs[job_id] = StoredJob(
            job_id, request.prompt, request.size, request.user_id, request.guild_id
        )
        return Admission(allowed=True, job_id=job_id)

    async def record_submitted(self, job_id: int, task_id: str) -> None:
        return None

    async def finish(
        self,
        job_id: int,
        outcome: JobOutcome,
        *,
        task_id: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self.outcomes[job_id] = outcome

    async def lookup(self, job_id: int) -> StoredJob | None:
        return self._jobs.get(job_id)

    async def nsfw_policy(self, guild_id: int | None) -> str:
        return self._nsfw_policy
