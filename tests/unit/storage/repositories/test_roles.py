"""Role overrides and exempt roles on both backends."""

from __future__ import annotations

from bot.storage import (
    RoleOverride,
    RoleOverrideRepo,
)
from bot.storage.database import Database


async def test_role_overrides_and_exemptions(database: Database) -> None:
    repo = RoleOverrideRepo(database)
    await repo.set(1, RoleOverride(10, daily_quota=100))
    await repo.set(1, RoleOverride(11, generations_per_window=0, max_concurrent_jobs=4))
    await repo.set(1, RoleOverride(10, daily_quota=50))  # replaces
    await repo.set(2, RoleOverride(10, daily_quota=1))
    assert await repo.list(1) == [
        RoleOverride(10, daily_quota=50),
        RoleOverride(11, generations_per_window=0, max_concurrent_jobs=4),
    ]
    assert await repo.add_exempt(1, 12) is True
    assert await repo.add_exempt(1, 12) is False
    assert await repo.exempt_roles(1) == {12}

    member = await repo.for_member(1, [10, 99])
    assert member.overrides == (RoleOverride(10, daily_quota=50),) and not member.exempt
    assert (await repo.for_member(1, [12])).exempt
    assert (await repo.for_member(2, [12])).exempt is False
    assert await repo.for_member(1, []) == (await repo.for_member(3, []))

    assert await repo.remove(1, 10) and not await repo.remove(1, 10)
    assert await repo.remove_exempt(1, 12) and not await repo.remove_exempt(1, 12)
    assert [o.role_id for o in await repo.list(1)] == [11]
