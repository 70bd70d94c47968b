"""Group-commit admission on both backends: many requests per transaction, each answered as if
alone and in order; guild rules cached by config version, also across processes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

import pytest

from bot.imaging import ImageSize
from bot.jobs.model import JobRequest
from bot.limits.admin import GuildAdmin
from bot.limits.admission import AdmissionService
from bot.limits.names import RefusalReason
from bot.limits.policy import GuildLimits, LimitPolicy, UserLimits
from bot.storage import UsageLedger
from bot.storage.database import Database
from bot.storage.repository_set import Repositories

if TYPE_CHECKING:
    from fakes.clock import ManualUtcClock
    from tests.db_fixtures import DbTarget

pytestmark = pytest.mark.timeout(60)

GUILD, CHANNEL, ADMIN = 11, 22, 99


def policy(per_window: int = 0, guild_concurrent: int = 0) -> LimitPolicy:
    return LimitPolicy(
        UserLimits(per_window, dt.timedelta(minutes=10), 0, 0), GuildLimits(guild_concurrent, 0, 0)
    )


def request(user: int, prompt: str = "a red fox", **changes: object) -> JobRequest:
    base = JobRequest(GUILD, CHANNEL, user, prompt, ImageSize(1024, 1024))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]



def admission_over(
    database: Database, limits: LimitPolicy, clock: ManualUtcClock
) -> AdmissionService:
    return AdmissionService(Repositories.over(database, clock), limits, clock=clock)

async def test_a_burst_is_decided_in_few_transactions_each_answer_exact_and_in_order(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = admission_over(database, policy(per_window=3), utc_clock)
    try:
        burst = [request(user, f"member {user}") for user in range(200)]
        burst += [request(7, f"repeat {k}") for k in range(20)]  # one member, a limit of 3
        answers = await asyncio.gather(*(svc.admit(r) for r in burst))
        assert svc._batcher.batches <= 2  # group commit, not one transaction per request
        assert all(a.allowed for a in answers[:200])
        repeats = answers[200:]
        # Member 7 already had one ("member 7"), so two more: the first two in arrival order.
        assert [a.allowed for a in repeats] == [True, True] + [False] * 18
        assert {a.refusal.reason for a in repeats[2:] if a.refusal} == {RefusalReason.PER_WINDOW}
        # Every job id names the request it was given to.
        for sent, answer in zip(burst, answers, strict=True):
            if answer.job_id is not None:
                entry = await svc.lookup(answer.job_id)
                assert entry is not None
                assert (entry.user_id, entry.prompt) == (sent.user_id, sent.prompt)
        assert (await UsageLedger(database).history(GUILD)).total == 202
    finally:
        await svc.close()


async def test_guild_limit_counts_the_members_admitted_earlier_in_the_same_batch(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = admission_over(database, policy(guild_concurrent=5), utc_clock)
    try:
        answers = await asyncio.gather(*(svc.admit(request(user)) for user in range(30)))
        assert [a.allowed for a in answers] == [True] * 5 + [False] * 25
    finally:
        await svc.close()


async def test_an_admin_change_in_another_process_is_seen_by_the_next_admission(
    db_target: DbTarget, utc_clock: ManualUtcClock
) -> None:
    bot_db = await db_target.connect()
    admin_db = await db_target.connect(migrate=False)  # another process's own connections
    svc = admission_over(bot_db, policy(), utc_clock)
    admin = GuildAdmin(Repositories.over(admin_db), policy())
    try:
        assert (await svc.admit(request(1, "a lighthouse"))).allowed
        assert (await svc.admit(request(2, "a harbour"))).allowed
        reloads = svc._rules.reloads
        assert reloads == 1  # the second request used the cached rules

        await admin.add_word(GUILD, ADMIN, "lighthouse")
        refused = await svc.admit(request(1, "a lighthouse at dusk"))
        assert refused.refusal is not None and refused.refusal.reason is RefusalReason.BLOCKED_TERM
        await admin.ban(GUILD, ADMIN, 2)
        banned = await svc.admit(request(2, "a harbour"))
        assert banned.refusal is not None and banned.refusal.reason is RefusalReason.BANNED
        await admin.set_limit(GUILD, ADMIN, "per_window", 1)
        limited = await svc.admit(request(3, "a harbour"))
        assert limited.allowed
        again = await svc.admit(request(3, "a harbour"))
        assert again.refusal is not None and again.refusal.reason is RefusalReason.PER_WINDOW
        assert svc._rules.reloads == reloads + 3  # once per change, not per request
    finally:
        await svc.close()
        await admin_db.close()
        await bot_db.close()


async def test_a_request_abandoned_before_its_batch_is_given_back(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    svc = admission_over(database, policy(per_window=1), utc_clock)
    try:
        abandoned = asyncio.create_task(svc.admit(request(5, "never shown")))
        await asyncio.sleep(0)  # queued; its batch has not been decided yet
        abandoned.cancel()
        # Decided after the abandoned one (same member): the refund frees the window again.
        await svc.admit(request(6))
    finally:
        await svc.close()  # waits for refunds of abandoned admissions
    rows = (await UsageLedger(database).history(GUILD, user_id=5)).entries
    assert [row.counted for row in rows] == [False]
