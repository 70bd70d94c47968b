"""Role-based limits: roles whose members get other limits, and roles exempt from them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import RowMapping, select

from bot.clock import WallClock, utc_now
from bot.storage.database import Database
from bot.storage.repositories import config_versions
from bot.storage.schema import exempt_roles, role_overrides


@dataclass(frozen=True)
class RoleOverride:
    """Limits for members with this role; None leaves the guild's value (0 = unlimited)."""

    role_id: int
    generations_per_window: int | None = None
    max_concurrent_jobs: int | None = None
    daily_quota: int | None = None


@dataclass(frozen=True)
class MemberRoles:
    """The overrides and exemptions that apply to one member's roles."""

    overrides: tuple[RoleOverride, ...]
    exempt: bool


class RoleOverrideRepo:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def set(self, guild_id: int, override: RoleOverride) -> None:
        values = {
            "generations_per_window": override.generations_per_window,
            "max_concurrent_jobs": override.max_concurrent_jobs,
            "daily_quota": override.daily_quota,
            "updated_at": self._clock(),
        }
        keys = {"guild_id": guild_id, "role_id": override.role_id}
        async with self._db.write() as conn:
            await config_versions.bump(self._db, conn, guild_id)
            await self._db.upsert(conn, role_overrides, keys, values)

    async def remove(self, guild_id: int, role_id: int) -> bool:
        return await config_versions.remove_guild_row(
            self._db, role_overrides, guild_id, role_id=role_id
        )

    async def list(self, guild_id: int) -> list[RoleOverride]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(role_overrides)
                .where(role_overrides.c.guild_id == guild_id)
                .order_by(role_overrides.c.role_id)
            )
            return [override_from_row(row) for row in rows.mappings()]

    async def add_exempt(self, guild_id: int, role_id: int) -> bool:
        """True if the role was not exempt before."""
        return await config_versions.add_guild_row(
            self._db, exempt_roles, guild_id, {"role_id": role_id}
        )

    async def remove_exempt(self, guild_id: int, role_id: int) -> bool:
        return await config_versions.remove_guild_row(
            self._db, exempt_roles, guild_id, role_id=role_id
        )

    async def exempt_roles(self, guild_id: int) -> frozenset[int]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(exempt_roles.c.role_id).where(exempt_roles.c.guild_id == guild_id)
            )
            return frozenset(rows.scalars())

    async def for_member(self, guild_id: int, role_ids: Collection[int]) -> MemberRoles:
        """What the member's roles change, read in one transaction."""
        if not role_ids:
            return MemberRoles((), exempt=False)
        wanted = list(role_ids)
        async with self._db.read() as conn:
            exempt = (
                await conn.execute(
                    select(exempt_roles.c.role_id)
                    .where(exempt_roles.c.guild_id == guild_id, exempt_roles.c.role_id.in_(wanted))
                    .limit(1)
                )
            ).first() is not None
            rows = await conn.execute(
                select(role_overrides).where(
                    role_overrides.c.guild_id == guild_id, role_overrides.c.role_id.in_(wanted)
                )
            )
            overrides = tuple(override_from_row(row) for row in rows.mappings())
        return MemberRoles(overrides, exempt)


def override_from_row(row: RowMapping) -> RoleOverride:
    return RoleOverride(
        role_id=row["role_id"],
        generations_per_window=row["generations_per_window"],
        max_concurrent_jobs=row["max_concurrent_jobs"],
        daily_quota=row["daily_quota"],
    )
