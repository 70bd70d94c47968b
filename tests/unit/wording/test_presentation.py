from __future__ import annotations

import datetime as dt

import pytest

from bot.imaging import ImageSize
from bot.interactions.transport.embeds import to_embed
from bot.jobs.model import JobStage
from bot.jobs.progress import ProgressUpdate
from bot.wording import presentation as ui
from bot.wording.cards import Card

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
JOB = ui.JobView("a *bold* @everyone poster", ImageSize(1024, 1536), 42, "Ada", NOW)


def update(
    phase: JobStage = JobStage.GENERATING, percent: float = 40.0, **kw: object
) -> ProgressUpdate:
    base: dict[str, object] = dict(
        stage=phase,
        percent=percent,
        percent_is_estimate=True,
        eta_seconds=12.0,
        elapsed_seconds=8.0,
    )
    base.update(kw)
    return ProgressUpdate(**base)  # type: ignore[arg-type]


def embed_size(card: Card) -> int:
    """The characters Discord counts against its 6,000-character cap, of the embed it receives."""
    return len(to_embed(card))


def test_prompt_is_escaped_and_pings_nobody() -> None:
    shown = ui.format_prompt("**hi** @everyone <@123456789012345678> <@&223456789012345678> _x_")
    assert "\\*\\*hi\\*\\*" in shown
    assert "@everyone" not in shown.replace("@\u200beveryone", "")
    assert "<@123456789012345678>" not in shown
    assert "<@&223456789012345678>" not in shown


def test_long_prompt_is_truncated_with_an_ellipsis_and_fits_the_embed() -> None:
    prompt = "\\" * 3000 + "x" * 2000
    shown = ui.format_prompt(prompt)
    # Each backslash is escaped as two; the cut keeps whole pairs, so the member sees the first
    # 749 backslashes as typed, then the ellipsis (never a dangling escape).
    assert shown == "\\" * 1498 + "…"
    assert len(shown) <= ui.PROMPT_SHOWN_LIMIT
    card = ui.progress_card(
        ui.JobView(prompt, ImageSize(512, 512), 1, "x" * 32, NOW), update(), NOW
    )
    assert embed_size(card) <= 6000 and len(card.description or "") <= 4096


@pytest.mark.parametrize(
    ("prompt", "shown"),
    [
        ("\\" * 10, "\\" * 20),  # short: every backslash shown (escaped)
        ("\\" * 2000, "\\" * 1498 + "…"),  # only backslashes, long: not an empty string
        ("a" * 1498 + "*bc", "a" * 1498 + "…"),  # the cut falls inside the escape of "*"
    ],
)
def test_truncation_never_leaves_a_dangling_escape(prompt: str, shown: str) -> None:
    assert ui.format_prompt(prompt) == shown


def test_progress_never_shows_100_before_done() -> None:
    assert ui.shown_percent(update(percent=99.9)) == 95
    assert ui.shown_percent(update(percent=100.0)) == 99
    assert ui.shown_percent(update(stage=JobStage.DONE, percent=100.0)) == 100


def test_progress_card_marks_estimates_and_uses_relative_times() -> None:
    card = ui.progress_card(JOB, update(percent=42), NOW)
    values = " ".join(field.value for field in card.fields)
    assert "40 % (estimate)" in values
    assert "<t:" in values and ":R>" in values
    assert "1024×1536" in values
    exact = ui.progress_card(JOB, update(percent=42, percent_is_estimate=False), NOW)
    assert "(estimate)" not in " ".join(f.value for f in exact.fields)


def test_queue_position_in_title() -> None:
    card = ui.progress_card(JOB, update(JobStage.WAITING, 0, queue_position=3), NOW)
    assert "position 3" in card.title


def test_signature_changes_only_on_visible_changes() -> None:
    a = ui.progress_signature(update(percent=41), NOW)
    b = ui.progress_signature(update(percent=44), NOW + dt.timedelta(seconds=1))
    c = ui.progress_signature(update(percent=46), NOW)
    d = ui.progress_signature(update(stage=JobStage.DOWNLOADING, percent=41), NOW)
    assert a == b and a != c and a != d


def test_result_card_shows_the_attachment_unless_spoilered() -> None:
    shown = ui.result_card(JOB, filename="t.jpeg", seconds=12.34)
    assert shown.image == "t.jpeg"
    assert to_embed(shown).image.url == "attachment://t.jpeg"
    assert "12.3 s" in " ".join(f.value for f in shown.fields)
    hidden = ui.result_card(JOB, filename="t.jpeg", seconds=1, spoiler=True)
    assert hidden.image is None
    assert to_embed(hidden).image.url is None


def test_refusal_text_has_a_relative_retry_time() -> None:
    text = ui.refusal_text("You have used your 5 images.", NOW)
    assert text.startswith("You have used") and f"<t:{int(NOW.timestamp())}:R>" in text
