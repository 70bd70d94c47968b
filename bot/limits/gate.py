"""`LedgerGate`: the production `GenerationGate`, backed by `AdmissionService` and the ledger."""

from __future__ import annotations

from collections.abc import Mapping

from bot.gate import Admission, GenerationRequest, JobOutcome, StoredJob
from bot.imaging import InvalidSizeError, parse_size
from bot.limits.policy import Decision
from bot.limits.service import AdmissionRequest, AdmissionService, Outcome
from bot.storage.guild_settings import NsfwPolicy

DIRECT_MESSAGES = 0  # the ledger's guild id for jobs started outside a server

_OUTCOMES: Mapping[JobOutcome, Outcome] = {
    JobOutcome.SUCCEEDED: Outcome.SUCCEEDED,
    JobOutcome.FAILED: Outcome.FAILED,
    JobOutcome.CANCELLED: Outcome.CANCELLED,
    JobOutcome.REFUSED: Outcome.REFUSED,
}


def refusal_sentence(decision: Decision) -> str:
    """`Decision.reason` as a sentence for the member (the blocked term, if any, is named)."""
    detail = f" ({decision.detail})" if decision.detail else ""
    return f"Sorry, {decision.reason}{detail}."


class LedgerGate:
    def __init__(self, admissions: AdmissionService) -> None:
        self.admissions = admissions

    async def admit(self, request: GenerationRequest) -> Admission:
        admission = await self.admissions.admit(
            AdmissionRequest(
                guild_id=request.guild_id or DIRECT_MESSAGES,
                channel_id=request.channel_id or 0,
                user_id=request.user_id,
                prompt=request.prompt,
                size=request.size,
                role_ids=request.role_ids,
                is_moderator=request.is_moderator,
                reroll_of=request.parent_job_id,
                parent_channel_id=request.parent_channel_id,
            )
        )
        if admission.allowed:
            return Admission(allowed=True, job_id=admission.ticket)
        decision = admission.decision
        return Admission(
            allowed=False, reason=refusal_sentence(decision), retry_at=decision.retry_at
        )

    async def record_submitted(self, job_id: int, task_id: str) -> None:
        await self.admissions.mark_submitted(job_id, task_id)

    async def finish(
        self,
        job_id: int,
        outcome: JobOutcome,
        *,
        task_id: str | None = None,
        seconds: float | None = None,
    ) -> None:
        timings = None if seconds is None else {"total": seconds}
        await self.admissions.finish(job_id, _OUTCOMES[outcome], task_id=task_id, timings=timings)

    async def lookup(self, job_id: int) -> StoredJob | None:
        entry = await self.admissions.ledger.get(job_id)
        if entry is None:
            return None
        try:
            size = parse_size(entry.size)
        except InvalidSizeError:
            return None  # written by a release with other size rules; can't be re-rolled
        guild_id = None if entry.guild_id == DIRECT_MESSAGES else entry.guild_id
        return StoredJob(entry.id, entry.prompt, size, entry.user_id, guild_id)

    async def nsfw_policy(self, guild_id: int | None) -> str:
        if guild_id is None:
            return str(NsfwPolicy.BLOCK)
        return str((await self.admissions.guild_settings.get(guild_id)).nsfw_policy)
