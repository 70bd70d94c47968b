"""Checks that measure real time: the few places where how fast something happens is the point.

Unit and end-to-end tests assert behaviour on clocks they control; these compare wall-clock
durations with numbers, so they live apart, with slack for a loaded machine. Each still runs
the real code end to end (stacks from `make_stack`, so the spec check applies).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp
import pytest

from bot.limits.blocked_terms import BlockedTerms
from bot.wording import presentation as ui
from fakes.clock import ManualClock
from fakes.discord.server import FakeMessage
from fakes.novita.server import MockNovita, MockNovitaConfig
from tests.e2e.stacks import StackFactory
from tests.e2e.support import title
from tests.fakes.test_mock_novita import poll, submit
from tests.unit.limits.test_blocked_terms import HOSTILE_PROMPTS, worst_case_terms

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_fifty_members_at_once_all_get_images_without_rate_limits(
    make_stack: StackFactory,
) -> None:
    async with make_stack(fixed_duration=10.0, draw_prompt=False) as stack:
        members = [stack.fake.add_member(stack.guild, f"user{n}") for n in range(50)]
        started = time.monotonic()
        interactions = await asyncio.gather(
            *(
                stack.imagine(member, f"picture number {n}", "512*512")
                for n, member in enumerate(members)
            )
        )
        messages: list[FakeMessage] = await asyncio.gather(
            *(stack.wait_result(interaction) for interaction in interactions)
        )
        elapsed = time.monotonic() - started

        assert all(title(message) == ui.RESULT_TITLE for message in messages)
        assert all(len(message.attachments) == 1 for message in messages)
        assert {m.attachments[0].filename for m in messages} == {
            f"{task_id}.jpeg" for task_id in stack.mock.tasks
        }
        assert len(stack.mock.tasks) == 50
        assert all(i.acknowledged for i in interactions)  # each inside the fake's 3 s window
        assert stack.fake.rate_limited_count == 0
        assert stack.fake.rate_limit_exhausted_count == 0
        # Only MAX_CONCURRENT_UPSTREAM_TASKS (8) run at once: the rest showed their place.
        queued = [
            m
            for m in messages
            if any("In the queue: position" in str(e.payload.get("embeds")) for e in m.edits)
        ]
        assert queued
        assert elapsed < 15, elapsed



async def test_progress_edits_keep_the_interval_and_the_result_is_not_held_back(
    make_stack: StackFactory,
) -> None:
    interval = 0.25
    async with make_stack(
        fixed_duration=120.0,  # 1.2 s of generating: several throttle windows
        settings={"progress_edit_interval": interval},
    ) as stack:
        interaction = await stack.imagine(stack.alice, "a slow lighthouse", "512*512")
        message = await stack.wait_result(interaction)
    assert title(message) == ui.RESULT_TITLE
    times = [edit.at for edit in message.edits]
    assert len(times) >= 3
    # Progress keeps the interval; the result is delivered as soon as it is downloaded, however
    # recent the last progress edit (one edit of the message's rate limit is kept for it).
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:-1])]
    # The bot measures the interval when it sends; the fake when the request arrives.
    assert min(gaps) >= interval - 0.08, gaps  # slack for request latency under load
    # Without throttling, a 1.2 s job at 0.01-0.1 s polls would edit far more often.
    assert len(times) <= 1.2 / interval + 3
    assert stack.fake.rate_limited_count == 0



async def test_the_mock_novita_serves_a_thousand_concurrent_tasks_in_seconds() -> None:
    clock = ManualClock()
    config = MockNovitaConfig(clock=clock, seed=3)
    connector = aiohttp.TCPConnector(limit=200)
    async with MockNovita(config) as mock, aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        ids = await asyncio.gather(*(submit(http, mock, f"p{i}") for i in range(1000)))
        clock.advance(60)  # every planned task (≤ 30 s + queue ≤ 8 s, ±spread) has finished
        bodies = await asyncio.gather(*(poll(http, mock, task_id) for task_id in ids))
        elapsed = time.perf_counter() - started
    assert len(set(ids)) == 1000 and len(mock.tasks) == 1000
    assert {body["task"]["status"] for body in bodies} == {"TASK_STATUS_SUCCEED"}
    assert (mock.stats.submits, mock.stats.polls) == (1000, 1000)
    assert elapsed < 15


def test_worst_case_blocked_words_cost_milliseconds_per_prompt() -> None:
    """500 worst-case terms against the longest hostile prompts: the old matcher took seconds
    per prompt (bench/blocked_terms.py measures both); one RE2 scan takes well under 50 ms."""
    terms = BlockedTerms(worst_case_terms())
    for prompt in HOSTILE_PROMPTS.values():
        assert terms.find(prompt) is None  # builds the automaton's states
        started = time.monotonic()
        for _ in range(10):
            terms.find(prompt)
        assert (time.monotonic() - started) / 10 < 0.05
