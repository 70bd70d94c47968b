"""Small named strings the bot keeps across restarts (fits `bot.app.composition.KeyValueState`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from bot.clock import WallClock, utc_now
from bot.storage.database import Database
from bot.storage.schema import bot_state, durations


class StateStore:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def get(self, key: str) -> str | None:
        async with self._db.read() as conn:
            value = (
                await conn.execute(select(bot_state.c.value).where(bot_state.c.key == key))
            ).scalar_one_or_none()
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        async with self._db.write() as conn:
            await self._db.upsert(
                conn, bot_state, {"key": key}, {"value": value, "updated_at": self._clock()}
            )


class DurationStore:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def load(self, name: str) -> dict[str, Any] | None:
        """The blob saved under `name`, or None (never saved, or unreadable)."""
        async with self._db.read() as conn:
            raw = (
                await conn.execute(select(durations.c.data).where(durations.c.name == name))
            ).scalar_one_or_none()
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None  # a damaged blob only costs the learned estimates; start afresh
        return data if isinstance(data, dict) else None

    async def save(self, name: str, data: Mapping[str, Any]) -> None:
        values = {"data": json.dumps(dict(data), sort_keys=True), "updated_at": self._clock()}
        async with self._db.write() as conn:
            await self._db.upsert(conn, durations, {"name": name}, values)
