"""Key-value state on both backends, and the duration store on top of it."""

from __future__ import annotations

from bot.storage import StateStore
from bot.storage.database import Database
from bot.storage.repositories.state import DurationStore


async def test_duration_store_round_trip(database: Database) -> None:
    store = DurationStore(database)
    assert await store.load("model") is None
    await store.save("model", {"1024*1024": {"mean": 12.5, "n": 3}})
    await store.save("model", {"1024*1024": {"mean": 11.0, "n": 4}})
    assert await store.load("model") == {"1024*1024": {"mean": 11.0, "n": 4}}


async def test_state_store(database: Database) -> None:
    store = StateStore(database)
    assert await store.get("tree-hash") is None
    await store.set("tree-hash", "abc")
    await store.set("tree-hash", "def")
    assert await store.get("tree-hash") == "def"
