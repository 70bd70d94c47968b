"""FairQueue: bounded slots, round-robin between owners, FIFO within one, live positions."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from bot.jobs.fair_queue import FairQueue

pytestmark = pytest.mark.timeout(10)


async def settle() -> None:
    """Let every ready task run until it blocks again (no wall-clock waiting)."""
    for _ in range(10):
        await asyncio.sleep(0)


class Harness:
    """Starts jobs that take a slot and hold it until the test releases them."""

    def __init__(self, queue: FairQueue) -> None:
        self.queue = queue
        self.served: list[str] = []
        self.positions: dict[str, list[int]] = {}
        self._release: dict[str, asyncio.Event] = {}
        self._started: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, owner: Hashable, name: str) -> None:
        self._release[name] = asyncio.Event()
        self._started[name] = asyncio.Event()
        self.positions[name] = []
        self.tasks[name] = asyncio.create_task(self._job(owner, name))
        await settle()  # it reaches the queue now, so arrival order is the call order

    async def _job(self, owner: Hashable, name: str) -> None:
        async def on_position(position: int) -> None:
            self.positions[name].append(position)

        async with self.queue.slot(owner, on_position=on_position):
            self.served.append(name)
            self._started[name].set()
            await self._release[name].wait()

    async def finish(self, name: str) -> None:
        await self._started[name].wait()
        self._release[name].set()
        await self.tasks[name]
        await settle()


async def test_capacity_bounds_running_jobs() -> None:
    h = Harness(FairQueue(2))
    for name in "abc":
        await h.start(name, name)
    assert h.served == ["a", "b"]
    assert (h.queue.running, h.queue.waiting) == (2, 1)
    await h.finish("a")
    assert h.served == ["a", "b", "c"]
    await h.finish("b")
    await h.finish("c")
    assert (h.queue.running, h.queue.waiting) == (0, 0)


async def test_round_robin_between_owners_fifo_within_one() -> None:
    h = Harness(FairQueue(1))
    await h.start("blocker", "x")
    for name in ("a1", "a2", "a3"):
        await h.start("alice", name)
    await h.start("bob", "b1")
    await h.start("carol", "c1")
    await h.start("bob", "b2")
    assert [h.positions[n][-1] for n in ("a1", "b1", "c1", "a2", "b2", "a3")] == [1, 2, 3, 4, 5, 6]
    order = ["x", "a1", "b1", "c1", "a2", "b2", "a3"]
    for name in order:
        await h.finish(name)
    assert h.served == order


async def test_positions_move_up_as_the_line_moves() -> None:
    h = Harness(FairQueue(1))
    await h.start("x", "x")
    await h.start("a", "a")
    await h.start("b", "b")
    assert h.positions == {"x": [], "a": [1], "b": [2]}
    await h.finish("x")
    assert h.served == ["x", "a"]
    assert h.positions == {"x": [], "a": [1], "b": [2, 1]}


async def test_newcomer_goes_ahead_of_a_heavy_users_backlog() -> None:
    h = Harness(FairQueue(1))
    await h.start("x", "x")
    await h.start("alice", "a1")
    await h.start("alice", "a2")
    await h.start("bob", "b1")
    assert h.positions["a2"] == [2, 3]  # pushed back by bob's first job
    assert h.positions["b1"] == [2]


async def test_cancelled_waiter_leaves_the_line() -> None:
    h = Harness(FairQueue(1))
    await h.start("x", "x")
    await h.start("a", "a")
    await h.start("b", "b")
    h.tasks["a"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await h.tasks["a"]
    await settle()
    assert h.positions["b"] == [2, 1]
    await h.finish("x")
    await h.finish("b")
    assert h.served == ["x", "b"]
    assert (h.queue.running, h.queue.waiting) == (0, 0)


async def test_cancel_right_after_being_granted_passes_the_slot_on() -> None:
    queue = FairQueue(1)
    holder = queue.slot("x")
    await holder.__aenter__()
    entered: list[str] = []

    async def job(name: str) -> None:
        async with queue.slot(name):
            entered.append(name)

    a = asyncio.create_task(job("a"))
    b = asyncio.create_task(job("b"))
    await settle()
    assert queue.waiting == 2
    await holder.__aexit__(None, None, None)  # grants a's slot without yielding to the loop
    a.cancel()  # ...and a is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await a
    await b
    assert entered == ["b"]
    assert (queue.running, queue.waiting) == (0, 0)


async def test_unlimited_capacity_never_waits() -> None:
    h = Harness(FairQueue(0))
    for i in range(50):
        await h.start(i % 3, f"j{i}")
    assert len(h.served) == 50 and h.queue.waiting == 0
    assert all(positions == [] for positions in h.positions.values())
    for i in range(50):
        await h.finish(f"j{i}")


async def test_a_failing_position_callback_fails_only_its_own_waiter() -> None:
    h = Harness(FairQueue(1))
    await h.start("x", "x")

    async def broken(position: int) -> None:
        raise RuntimeError("observer bug")

    async def doomed() -> None:
        async with h.queue.slot("y", on_position=broken):
            pytest.fail("must not get a slot")

    task = asyncio.create_task(doomed())
    await h.start("z", "z")
    with pytest.raises(RuntimeError, match="observer bug"):
        await task
    await h.finish("x")
    await h.finish("z")
    assert h.served == ["x", "z"]
    assert (h.queue.running, h.queue.waiting) == (0, 0)


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError):
        FairQueue(-1)
