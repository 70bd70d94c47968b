"""LedgerGate: the GenerationGate protocol on top of AdmissionService and the ledger."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

from bot.gate import GenerationGate, GenerationRequest, JobOutcome
from bot.imaging import ImageSize
from bot.limits.gate import LedgerGate
from bot.limits.policy import GuildLimits, LimitPolicy, UserLimits
from bot.limits.service import AdmissionService
from bot.storage import GuildConfig, LedgerStatus, NsfwPolicy
from bot.storage.database import Database

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock


def make_gate(db: Database, clock: ManualUtcClock, daily: int = 2) -> LedgerGate:
    policy = LimitPolicy(UserLimits(0, dt.timedelta(minutes=10), 0, daily), GuildLimits(0, 0, 0.0))
    return LedgerGate(AdmissionService(db, policy, clock=clock))


REQUEST = GenerationRequest(
    prompt="a heron",
    size=ImageSize(768, 1024),
    guild_id=5,
    channel_id=6,
    user_id=7,
    user_name="kim",
)


async def test_gate_admits_records_and_refunds(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    gate: GenerationGate = make_gate(database, utc_clock)
    first = await gate.admit(REQUEST)
    assert first.allowed and first.job_id is not None
    await gate.record_submitted(first.job_id, "task-1")
    await gate.finish(first.job_id, JobOutcome.FAILED, task_id="task-1", seconds=3.5)
    second = await gate.admit(dataclasses.replace(REQUEST, parent_job_id=first.job_id))
    third = await gate.admit(REQUEST)
    assert second.allowed and third.allowed  # the failed job was refunded
    refused = await gate.admit(REQUEST)
    assert not refused.allowed
    assert refused.reason == "Sorry, you have used your 2 images for today."
    assert refused.retry_at == dt.datetime(2025, 3, 15, tzinfo=dt.UTC)

    assert isinstance(gate, LedgerGate)
    entry = await gate.admissions.ledger.get(first.job_id)
    assert entry is not None
    assert (entry.status, entry.timings) == (LedgerStatus.FAILED, {"total": 3.5})


async def test_lookup_and_direct_messages(database: Database, utc_clock: ManualUtcClock) -> None:
    gate = make_gate(database, utc_clock)
    dm = await gate.admit(dataclasses.replace(REQUEST, guild_id=None, channel_id=None))
    assert dm.job_id is not None
    stored = await gate.lookup(dm.job_id)
    assert stored is not None
    assert (stored.prompt, stored.size, stored.user_id, stored.guild_id) == (
        "a heron",
        ImageSize(768, 1024),
        7,
        None,
    )
    assert await gate.lookup(424242) is None


async def test_nsfw_policy_and_blocked_term_message(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    gate = make_gate(database, utc_clock)
    assert await gate.nsfw_policy(5) == "block"
    assert await gate.nsfw_policy(None) == "block"
    await gate.admissions.guild_settings.save(GuildConfig(5, nsfw_policy=NsfwPolicy.SPOILER))
    assert await gate.nsfw_policy(5) == "spoiler"
    await gate.admissions.moderation.add_blocked_term(5, "heron")
    refused = await gate.admit(REQUEST)
    assert refused.reason == "Sorry, your prompt contains a blocked word (heron)."
