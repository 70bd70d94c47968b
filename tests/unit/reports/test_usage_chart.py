"""The usage chart alone: a PNG of the promised size from full, empty and awkward data, and
renders that run one at a time off the event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import threading

import pytest
from PIL import Image

from bot.jobs.model import JobStatus
from bot.reports import usage_chart
from bot.reports.usage_chart import (
    DPI,
    HEIGHT_INCHES,
    PNG_SIGNATURE,
    WIDTH_INCHES,
    UsageChartData,
    UsageChartRenderer,
    alt_text,
    day_ticks,
    outcome_counts,
    plain,
    render_usage_chart,
    short_name,
)
from bot.storage.repositories.ledger import DailyUsage

TODAY = dt.date(2025, 3, 30)


def month(images: int = 10, *, empty_days: tuple[int, ...] = (3, 11)) -> list[DailyUsage]:
    days = []
    for n in range(30):
        day = TODAY - dt.timedelta(days=29 - n)
        if n in empty_days:
            days.append(DailyUsage(day))
        else:
            statuses = {JobStatus.SUCCEEDED: images + n, JobStatus.FAILED: 1,
                        JobStatus.CANCELLED: n % 3, JobStatus.SUBMITTED: n % 2}
            days.append(DailyUsage(day, statuses, (images + n) * 20_000))
    return days


def decode(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()  # the whole file decodes
    return image


@pytest.mark.parametrize(
    "data",
    [
        UsageChartData(month(), 1.0, [("alice", 300), ("bob", 12)], "March 2025"),
        UsageChartData([DailyUsage(TODAY - dt.timedelta(days=n)) for n in range(29, -1, -1)],
                       0.0, [], "March 2025"),
        UsageChartData(month(), 0.0, [("$5 $$ \\ 🎨 a very long display name", 3)] * 8, "May"),
    ],
    ids=["busy", "empty", "awkward-names"],
)
@pytest.mark.filterwarnings("ignore:Glyph")  # the emoji: a box in the picture, not an error
def test_renders_a_png_of_the_promised_size(data: UsageChartData) -> None:
    with decode(render_usage_chart(data)) as image:
        assert image.format == "PNG"
        assert image.size == (WIDTH_INCHES * DPI, HEIGHT_INCHES * DPI)
        assert image.mode in ("RGB", "RGBA")
        assert image.getpixel((0, 0))[:3] == (255, 255, 255)  # a white background


def test_outcomes_are_grouped_and_every_group_is_present() -> None:
    day = DailyUsage(TODAY, {JobStatus.RESERVED: 1, JobStatus.SUBMITTED: 2,
                             JobStatus.REFUNDED: 4})
    counts = outcome_counts(day)
    assert counts["running"] == 3 and counts["stopped early (not billed)"] == 4
    assert counts["done"] == 0 and len(counts) == len(usage_chart.OUTCOME_GROUPS)


def test_labels() -> None:
    days = [TODAY - dt.timedelta(days=n) for n in range(29, -1, -1)]
    positions, labels = day_ticks(days)
    assert positions == [1, 8, 15, 22, 29] and labels[-1] == "Mar 30"  # today is labelled
    assert plain("$5 and $6") == r"\$5 and \$6"  # never mathtext
    assert short_name("  a   very long display name indeed ") == "a very long displ…"
    text = alt_text(UsageChartData(month(), 1.0, [], "March 2025"))
    assert text.startswith("Chart: ") and "daily cap $1.00" in text


async def test_renders_run_one_at_a_time_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running, most, threads = 0, 0, set()
    lock = threading.Lock()
    loop_thread = threading.get_ident()

    def fake_render(data: UsageChartData) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.get_ident())
        threading.Event().wait(0.02)  # a moment of "drawing", on the worker thread
        with lock:
            running -= 1
        return PNG_SIGNATURE

    monkeypatch.setattr(usage_chart, "render_usage_chart", fake_render)
    renderer = UsageChartRenderer()
    data = UsageChartData(month(), 0.0, [], "March 2025")
    results = await asyncio.gather(*(renderer.render(data) for _ in range(4)))
    assert results == [PNG_SIGNATURE] * 4
    assert most == 1 and loop_thread not in threads
