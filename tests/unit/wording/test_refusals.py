"""How refusals and rejected admin input read: the sentences members and moderators see."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.limits.admin import AdminInputError, AdminProblem
from bot.limits.blocked_terms import TermProblem
from bot.limits.names import LimitName, RefusalReason
from bot.limits.policy import GuildLimits, LimitPolicy, Refusal, UserLimits, evaluate
from bot.usage import Usage
from bot.wording.refusals import (
    admin_error_text,
    channel_list,
    refusal_message,
    refusal_reason,
    refusal_sentence,
)

NOW = dt.datetime(2025, 3, 14, 23, 50, tzinfo=dt.UTC)


def refusal_for(policy: LimitPolicy, usage: Usage) -> Refusal:
    refusal = evaluate(policy.for_member((), {}), usage, NOW)
    assert refusal is not None
    return refusal


def policy(window: dt.timedelta = dt.timedelta(minutes=10), daily: int = 25) -> LimitPolicy:
    return LimitPolicy(UserLimits(5, window, 2, daily), GuildLimits(3, 10, 0.0))


def test_window_and_daily_refusals_name_their_numbers() -> None:
    starts = [NOW - dt.timedelta(minutes=m) for m in (9, 7, 5, 3, 1)]
    window = refusal_for(policy(), Usage(window_starts=starts, user_today=5))
    assert "5 images every 10 minutes" in refusal_reason(window)
    hourly = refusal_for(policy(window=dt.timedelta(hours=1)), Usage(starts))
    assert "5 images every 1 hour" in refusal_reason(hourly)
    daily = refusal_for(policy(daily=3), Usage(user_today=3))
    assert "3 images for today" in refusal_reason(daily)


@pytest.mark.parametrize(
    ("refusal", "sentence"),
    [
        (
            Refusal(RefusalReason.BANNED),
            "Sorry, you are not allowed to make images in this server.",
        ),
        (
            Refusal(RefusalReason.BLOCKED_TERM, blocked_term="heron"),
            "Sorry, your prompt contains a blocked word (heron).",
        ),
        (
            Refusal(RefusalReason.BOT_SPEND, NOW),
            "Sorry, the bot has reached its spending limit for today.",
        ),
        (
            Refusal(RefusalReason.GUILD_SPEND_USD, NOW),
            "Sorry, this server has reached its spending limit for today.",
        ),
        (
            Refusal(RefusalReason.GUILD_DAILY, NOW, limit=1),
            "Sorry, this server has used its 1 image for today.",
        ),
        (
            Refusal(RefusalReason.GUILD_CONCURRENT, limit=3, in_progress=3),
            "Sorry, this server already has 3 images in progress; try again when one of them "
            "is done.",
        ),
        (
            Refusal(RefusalReason.USER_CONCURRENT, limit=2, in_progress=2),
            "Sorry, you already have 2 images in progress (the limit is 2); try again when one "
            "of them is done.",
        ),
    ],
)
def test_every_refusal_reads_as_before(refusal: Refusal, sentence: str) -> None:
    assert refusal_sentence(refusal) == sentence


def test_the_user_installed_app_switched_off_reads_as_before() -> None:
    assert refusal_sentence(Refusal(RefusalReason.USER_INSTALLS_OFF)) == (
        "Sorry, the bot can't be used as an app installed to your account right now; "
        "try it in a server that has added it."
    )


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_refusal_reason_has_words(reason: RefusalReason) -> None:
    figures = Refusal(reason, limit=3, window=dt.timedelta(minutes=10), in_progress=3,
                      allowed_channel_ids=frozenset({1}))
    assert refusal_sentence(figures).startswith("Sorry, ")


def test_channel_refusals_list_a_few_channels_as_mentions() -> None:
    refusal = Refusal(RefusalReason.CHANNEL, allowed_channel_ids=frozenset(range(1, 8)))
    assert refusal_sentence(refusal) == (
        "Sorry, images can't be made in this channel; try <#1>, <#2>, <#3>, <#4>, <#5> "
        "or one of 2 more."
    )
    assert channel_list([30, 10]) == "<#10>, <#30>"


def test_the_message_says_when_to_try_again() -> None:
    timed = refusal_message(Refusal(RefusalReason.USER_DAILY, NOW, limit=25))
    stamp = int(NOW.timestamp())
    assert timed == (
        f"Sorry, you have used your 25 images for today. You can try again <t:{stamp}:R>."
    )
    assert refusal_message(Refusal(RefusalReason.BANNED)).endswith("in this server.")


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            AdminInputError(
                AdminProblem.LIMIT_OUT_OF_RANGE, limit=LimitName.PER_WINDOW, maximum=100_000
            ),
            "Images per window (each member) must be between 0 and 100000.",
        ),
        (
            AdminInputError(AdminProblem.NOT_A_WHOLE_NUMBER, limit=LimitName.USER_DAILY),
            "Images per day (each member) must be a whole number.",
        ),
        (
            AdminInputError(AdminProblem.WINDOW_TOO_SHORT, limit=LimitName.WINDOW_MINUTES),
            "The window must be at least 1 minute long.",
        ),
        (
            AdminInputError(AdminProblem.NO_ROLE_LIMIT_GIVEN),
            "Give at least one of per_window, concurrent or daily (0 means unlimited).",
        ),
        (
            AdminInputError(
                AdminProblem.ROLE_LIMIT_OUT_OF_RANGE, role_limit="daily", maximum=100_000
            ),
            "daily must be between 0 and 100,000.",
        ),
        (
            AdminInputError(
                AdminProblem.TERM_NOT_BLOCKABLE, term_problem=TermProblem.TOO_MANY_WILDCARDS
            ),
            "That word can't be blocked: it may contain at most 2 `*`.",
        ),
        (
            AdminInputError(AdminProblem.TOO_MANY_TERMS, maximum=500),
            "This server already blocks 500 words; remove some first.",
        ),
        (
            AdminInputError(AdminProblem.TOO_MANY_CHANNELS, maximum=100),
            "At most 100 channels can be allowed.",
        ),
    ],
)
def test_admin_input_errors_read_as_before(error: AdminInputError, text: str) -> None:
    assert admin_error_text(error) == text
