"""Results kept for members with closed DMs, on both backends."""

from __future__ import annotations

from bot.jobs.model import ImageFile
from bot.storage.database import Database
from bot.storage.repositories.kept_results import MAX_KEPT_PER_MEMBER, KeptResults

ALICE, BOB, CAROL = 1_234_567_890_123_456_781, 1_234_567_890_123_456_782, 3


async def test_members_waiting_answers_a_whole_batch_in_one_query(database: Database) -> None:
    pending = KeptResults(database)
    assert await pending.members_waiting([]) == set()
    await pending.keep(ALICE, '{"title": "a"}', ImageFile(b"\xff\xd8jpeg", "a.jpg", False))
    await pending.keep(ALICE, '{"title": "b"}')
    await pending.keep(CAROL, '{"title": "c"}')
    assert await pending.members_waiting([ALICE, BOB, CAROL, ALICE]) == {ALICE, CAROL}
    assert await pending.members_waiting([BOB]) == set()


async def test_take_removes_what_it_returns_and_keeps_at_most_five(database: Database) -> None:
    pending = KeptResults(database)
    for n in range(MAX_KEPT_PER_MEMBER + 2):
        await pending.keep(ALICE, f'{{"title": "{n}"}}')
    kept = await pending.take(ALICE)
    assert [item.embed_json for item in kept] == [
        f'{{"title": "{n}"}}' for n in range(2, MAX_KEPT_PER_MEMBER + 2)]  # the oldest dropped
    assert await pending.members_waiting([ALICE]) == set()
    assert await pending.take(ALICE) == []
