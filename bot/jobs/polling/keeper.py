"""`DurationKeeper`: persists what the duration model learned, now and then and on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from bot.jobs.polling.durations import DurationModel
from bot.storage.repositories.state import DurationStore

log = logging.getLogger(__name__)

DURATIONS_KEY: Final = "qwen-image"  # edits keep theirs under `bot.jobs.edits.EDIT_DURATIONS_KEY`


class DurationKeeper:
    """Saves the engine's learned durations now and then, and once more on shutdown."""

    def __init__(
        self, model: DurationModel, store: DurationStore, interval: float,
        key: str = DURATIONS_KEY,
    ) -> None:
        self.model = model
        self.key = key
        self.store = store
        self.interval = interval
        self._saved: dict[str, object] | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def load(
        cls, store: DurationStore, interval: float, key: str = DURATIONS_KEY
    ) -> DurationKeeper:
        stored = await store.load(key)
        model = DurationModel.from_dict(stored) if stored else DurationModel()
        keeper = cls(model, store, interval, key)
        keeper._saved = dict(stored) if stored else None
        return keeper

    async def save(self) -> None:
        snapshot = self.model.to_dict()
        if snapshot != self._saved:
            await self.store.save(self.key, snapshot)
            self._saved = snapshot

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"duration-keeper:{self.key}")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.save()
            except Exception:
                log.warning("could not save learned durations", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.save()
        except Exception:
            log.warning("could not save learned durations on shutdown", exc_info=True)
