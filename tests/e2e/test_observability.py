"""Health, readiness and metrics over a real socket from a bot in the LocalStack; the SQLite
file deleted under the running bot; a status message deleted mid-job (Unknown Message 10008)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.interactions.generation import DATABASE_UNAVAILABLE
from bot.storage.repositories.ledger import UsageLedger
from fakes.discord.state import FakeDiscordConfig
from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory
from tests.e2e.support import title

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metrics_options(**more: Any) -> dict[str, Any]:
    """Stack options with the metrics server on a free port."""
    settings = {"metrics_port": free_port(), **more.pop("settings", {})}
    return {"settings": settings, **more}


def base_url(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.settings.metrics_port}"


async def scrape(stack: LocalStack) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url(stack)}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def get_json(stack: LocalStack, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(base_url(stack) + path) as resp:
        return resp.status, await resp.json()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Bounded wait for a condition only visible through HTTP (no event to wait on)."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def finished_job(stack: LocalStack, prompt: str = "a poster that says HELLO") -> None:
    interaction = await stack.imagine(stack.alice, prompt, "512*512")
    message = await stack.wait_result(interaction)
    assert title(message) == "✅ Here is your image"
    await stack.bot.generation.jobs.wait_idle()  # outcome recorded


@pytest.mark.stack(**metrics_options())
async def test_metrics_after_a_job_over_a_real_socket(stack: LocalStack) -> None:
    status, body = await get_json(stack, "/healthz")
    assert (status, body) == (200, {"alive": True})
    status, body = await get_json(stack, "/readyz")
    assert (status, body) == (200, {"ready": True, "reasons": []})

    await finished_job(stack)
    samples = await scrape(stack)

    assert value(samples, "imagine_admissions_total", result="allowed") == 1
    assert value(samples, "imagine_jobs_started_total") == 1
    assert value(samples, "imagine_jobs_finished_total", outcome="succeeded") == 1
    assert value(samples, "imagine_job_duration_seconds_count", outcome="succeeded") == 1
    assert value(samples, "imagine_job_queue_wait_seconds_count") == 1
    assert value(samples, "imagine_job_polls_count") == 1
    polls = value(samples, "imagine_job_polls_sum")
    assert polls >= 1
    assert value(samples, "imagine_jobs_in_flight") == 0
    # One logical call per operation; the polls match what the job reported.
    assert value(samples, "imagine_upstream_requests_total", operation="submit") == 1
    assert value(samples, "imagine_upstream_requests_total", operation="poll") == polls
    assert value(samples, "imagine_upstream_requests_total", operation="download") == 1
    assert total(samples, "imagine_upstream_errors_total") == 0
    assert value(samples, "imagine_upstream_http_attempts_total", operation="submit") == 1
    assert value(samples, "imagine_upstream_retries_total") == 0
    # Discord: the deferral was timed, the status message edited (progress and result).
    assert value(samples, "imagine_interaction_ack_seconds_count") == 1
    # A real duration was recorded (the fake accepted the ack, so it was inside 3 s).
    assert value(samples, "imagine_interaction_ack_seconds_sum") > 0
    edits = [c for c in stack.fake.calls if c.method == "PATCH" and c.status == 200]
    assert value(samples, "imagine_discord_edits_total", target="interaction") == len(edits)
    assert total(samples, "imagine_discord_rate_limited_total") == 0
    assert value(samples, "imagine_database_usable") == 1
    # Discord's session-start budget, read before this bot's one IDENTIFY.
    assert value(samples, "imagine_discord_session_starts_remaining") == 1000
    assert value(samples, "imagine_discord_session_starts_budget") == 1000

    async def lag_measured() -> bool:
        return value(await scrape(stack), "imagine_event_loop_lag_seconds_count") >= 1

    await eventually(lag_measured)


@pytest.mark.stack(**metrics_options(
    fixed_duration=150.0,
    fake_discord=FakeDiscordConfig(
        edit_rate_limit=2, edit_rate_window=0.5, advertise_rate_limits=False
    ),
))
async def test_discord_429s_are_counted(stack: LocalStack) -> None:
    await finished_job(stack, "a slow poster")
    samples = await scrape(stack)
    assert stack.fake.rate_limited_count >= 1  # the premise: the fake said 429
    limited = {labels: v for (name, labels), v in samples.items()
               if name == "imagine_discord_rate_limited_total"}
    assert sum(limited.values()) == stack.fake.rate_limited_count
    assert all(dict(labels)["kind"] == "edit_interaction" for labels in limited)


@pytest.mark.stack(**metrics_options())
async def test_sqlite_file_deleted_under_the_bot(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    await finished_job(stack)
    database = stack.services.database
    assert database is not None and database.is_usable
    path = stack.settings.database_url.reveal().removeprefix("sqlite+aiosqlite:///")
    os.remove(path)  # e.g. a cleanup script, or a volume not mounted where it should be

    status, body = await get_json(stack, "/readyz")
    assert status == 503
    assert body["ready"] is False and "SQLite file was deleted" in body["reasons"]

    interaction = await stack.imagine(stack.alice, "another poster", "512*512")
    await interaction.wait_acknowledged()
    refusal = await interaction.wait_original(lambda m: bool(m.content or m.embeds))
    assert interaction.ephemeral
    text = refusal.content or str(refusal.embeds)
    assert DATABASE_UNAVAILABLE in text
    assert len(stack.mock.tasks) == 1  # nothing submitted for the refused request

    samples = await scrape(stack)
    assert value(samples, "imagine_admissions_total", result="unavailable") == 1
    assert value(samples, "imagine_database_usable") == 0
    lines = [r for r in caplog.records if "while the bot was running" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR


async def test_readiness_says_shutting_down_once_closing(make_stack: StackFactory) -> None:
    async with make_stack(**metrics_options()) as stack:
        assert await stack.bot.readiness_problems() == []
        await stack.bot.close()
        assert "shutting down" in await stack.bot.readiness_problems()


async def test_status_message_deleted_mid_job_stops_progress_once(
    caplog: pytest.LogCaptureFixture, make_stack: StackFactory
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    async with make_stack(fixed_duration=200.0) as stack:
        interaction = await stack.imagine(stack.alice, "a slow sunrise", "512*512")
        message = await interaction.wait_original(lambda m: bool(m.embeds))
        message.deleted_at = stack.fake.clock()  # a moderator deletes the status message
        await stack.bot.generation.jobs.wait_idle()

        page = await UsageLedger(stack.services.database).history(stack.guild.id)
        assert [str(entry.status) for entry in page.entries] == ["succeeded"]
        assert page.entries[0].task_id is not None
    said = [r.getMessage() for r in caplog.records if "no more progress" in r.getMessage()]
    assert said == [f"job {page.entries[0].job_id}: status message was deleted; no more progress"]
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("bot.")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
