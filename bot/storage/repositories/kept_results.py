"""Results kept for a member who could not be reached when they were ready (the interaction
token had expired and their DMs are closed); their next command shows them and removes them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, insert, select

from bot.clock import WallClock, utc_now
from bot.jobs.model import ImageFile
from bot.storage.database import Database
from bot.storage.schema import pending_deliveries

# Kept per member at most; older ones are dropped (each may hold an image).
MAX_KEPT_PER_MEMBER = 5


@dataclass(frozen=True)
class PendingDelivery:
    id: int
    user_id: int
    embed_json: str  # the result embed as Discord's JSON
    image: bytes | None
    filename: str | None
    spoiler: bool


class KeptResults:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def keep(
        self,
        user_id: int,
        embed_json: str,
        image: ImageFile | None = None,
    ) -> None:
        data, filename, spoiler = (None, None, False) if image is None else (
            image.data, image.filename, image.spoiler)
        async with self._db.write() as conn:
            await conn.execute(insert(pending_deliveries).values(
                user_id=user_id, embed_json=embed_json, image=data, filename=filename,
                spoiler=spoiler, created_at=self._clock(),
            ))
            ids = (await conn.execute(
                select(pending_deliveries.c.id)
                .where(pending_deliveries.c.user_id == user_id)
                .order_by(pending_deliveries.c.id.desc())
            )).scalars().all()
            if len(ids) > MAX_KEPT_PER_MEMBER:
                await conn.execute(delete(pending_deliveries).where(
                    pending_deliveries.c.id.in_(ids[MAX_KEPT_PER_MEMBER:])))

    async def members_waiting(self, user_ids: Collection[int]) -> set[int]:
        """Which of these members have kept results: one indexed query for a whole batch of
        new jobs, reading no image bytes (asked for every admitted job)."""
        if not user_ids:
            return set()
        async with self._db.read() as conn:
            found = (await conn.execute(
                select(pending_deliveries.c.user_id)
                .where(pending_deliveries.c.user_id.in_(set(user_ids)))
                .distinct()
            )).scalars().all()
        return set(found)

    async def take(self, user_id: int) -> list[PendingDelivery]:
        """This member's kept results, oldest first, removed in the same transaction (so two
        commands at once never show one twice; the caller keeps again what it could not show)."""
        async with self._db.write() as conn:
            rows = (await conn.execute(
                select(pending_deliveries)
                .where(pending_deliveries.c.user_id == user_id)
                .order_by(pending_deliveries.c.id)
            )).all()
            if rows:
                await conn.execute(delete(pending_deliveries).where(
                    pending_deliveries.c.id.in_([row.id for row in rows])))
        return [_delivery(row) for row in rows]


def _delivery(row: Row[Any]) -> PendingDelivery:
    return PendingDelivery(
        id=row.id, user_id=row.user_id, embed_json=row.embed_json,
        image=row.image, filename=row.filename, spoiler=bool(row.spoiler),
    )
