"""Small named strings the bot keeps across restarts (fits `bot.services.KeyValueState`)."""

from __future__ import annotations

from sqlalchemy import select

from bot.clock import Clock, utc_now
from bot.storage.database import Database
from bot.storage.schema import bot_state


class StateStore:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
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
