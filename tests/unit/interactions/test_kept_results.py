"""Kept results (closed DMs) are looked up for a whole batch of new jobs at once."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from bot.interactions.kept_results import KeptResultLookups
from bot.storage.database import Database
from bot.storage.repositories.kept_results import KeptResults

ALICE, BOB, CAROL = 11, 22, 33


class CountingPending(KeptResults):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.queries: list[set[int]] = []

    async def members_waiting(self, user_ids: Collection[int]) -> set[int]:
        self.queries.append(set(user_ids))
        return await super().members_waiting(user_ids)


async def test_jobs_admitted_together_share_one_query(database: Database) -> None:
    pending = CountingPending(database)
    await pending.keep(ALICE, "{}")
    await pending.keep(CAROL, "{}")
    lookups = KeptResultLookups(pending)
    try:
        answers = await asyncio.gather(*(lookups.has_results(u) for u in (ALICE, BOB, CAROL, BOB)))
        assert answers == [True, False, True, False]
        assert pending.queries == [{ALICE, BOB, CAROL}]
        assert not await lookups.has_results(BOB)
        assert len(pending.queries) == 2
    finally:
        await lookups.close()


async def test_an_unreadable_table_means_nothing_is_shown_not_a_failed_job(
    database: Database,
) -> None:
    lookups = KeptResultLookups(KeptResults(database))
    await database.close()  # every query now fails
    try:
        assert not await lookups.has_results(ALICE)
    finally:
        await lookups.close()
