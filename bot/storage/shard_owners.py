"""Which process runs each Discord shard, with a heartbeat: who may take back a shard's jobs.

A process claims the shards it runs when its gateway is ready and refreshes the heartbeat while
it lives. Jobs are journaled with their guild's shard, so after a crash whichever process now
runs that shard (the same one restarted, or another) takes them over; a shard whose heartbeat
stopped has no live owner.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update

from bot.clock import Clock, utc_now
from bot.storage.database import Database
from bot.storage.schema import shard_owners


class ShardOwners:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, shard_ids: Iterable[int], owner_id: str) -> None:
        """This process now runs these shards (whoever ran them before)."""
        now = self._clock()
        async with self._db.write(["shard-owners"]) as conn:
            for shard_id in sorted(set(shard_ids)):
                await self._db.upsert(
                    conn,
                    shard_owners,
                    {"shard_id": shard_id},
                    {"owner_id": owner_id, "heartbeat_at": now},
                )

    async def heartbeat(self, shard_ids: Iterable[int], owner_id: str) -> set[int]:
        """Refresh our claim; returns the shards still ours (another process may have taken
        one over, e.g. during a rolling restart)."""
        wanted = sorted(set(shard_ids))
        async with self._db.write() as conn:
            await conn.execute(
                update(shard_owners)
                .where(shard_owners.c.shard_id.in_(wanted), shard_owners.c.owner_id == owner_id)
                .values(heartbeat_at=self._clock())
            )
            rows = await conn.execute(
                select(shard_owners.c.shard_id).where(
                    shard_owners.c.shard_id.in_(wanted), shard_owners.c.owner_id == owner_id
                )
            )
            return {int(shard_id) for (shard_id,) in rows}

    async def live(self, stale_after: dt.timedelta) -> dict[int, str]:
        """Shard id → owner, for owners whose heartbeat is fresher than `stale_after`."""
        since = self._clock() - stale_after
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(shard_owners.c.shard_id, shard_owners.c.owner_id).where(
                    shard_owners.c.heartbeat_at > since
                )
            )
            return {int(shard_id): str(owner) for shard_id, owner in rows}
