"""Every "no" in words: limit refusals for members, rejected input for moderators. Pure functions.

The core says why in codes and figures (`bot.limits.policy.Refusal`,
`bot.limits.admin.AdminInputError`); this module turns them into the sentences people read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import Final

from bot.limits.admin import LIMITS, SMALLEST_SPEND_USD, AdminInputError, AdminProblem, Unit
from bot.limits.blocked_terms import MAX_TERM_CHARS, MAX_WILDCARDS, TermProblem
from bot.limits.names import LimitName, RefusalReason
from bot.limits.policy import Refusal
from bot.wording.limit_words import LIMIT_LABELS, format_limit
from bot.wording.presentation import refusal_text

CHANNELS_SHOWN: Final = 5


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def window_text(window: dt.timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes % 60 == 0 and minutes >= 60:
        return plural(minutes // 60, "hour")
    return plural(minutes, "minute")


def channel_list(channel_ids: Collection[int], shown: int = CHANNELS_SHOWN) -> str:
    """Channel mentions (they render as links and ping nobody), a few at most."""
    ordered = sorted(channel_ids)
    text = ", ".join(f"<#{channel_id}>" for channel_id in ordered[:shown])
    if len(ordered) > shown:
        text += f" or one of {len(ordered) - shown} more"
    return text


def _window(refusal: Refusal) -> str:
    assert refusal.window is not None  # always set for PER_WINDOW
    return (
        f"you can start {plural(refusal.limit, 'image')} every {window_text(refusal.window)}"
    )


# Each completes "Sorry, …".
_REASONS: Final[Mapping[RefusalReason, Callable[[Refusal], str]]] = {
    RefusalReason.BANNED: lambda r: "you are not allowed to make images in this server",
    RefusalReason.CHANNEL: lambda r: (
        "images can't be made in this channel; try " + channel_list(r.allowed_channel_ids)
    ),
    RefusalReason.BLOCKED_TERM: lambda r: "your prompt contains a blocked word",
    RefusalReason.BOT_SPEND: lambda r: "the bot has reached its spending limit for today",
    RefusalReason.GUILD_SPEND_USD: lambda r: "this server has reached its spending limit for today",
    RefusalReason.GUILD_DAILY: lambda r: (
        f"this server has used its {plural(r.limit, 'image')} for today"
    ),
    RefusalReason.USER_DAILY: lambda r: f"you have used your {plural(r.limit, 'image')} for today",
    RefusalReason.PER_WINDOW: _window,
    RefusalReason.GUILD_CONCURRENT: lambda r: (
        f"this server already has {plural(r.in_progress, 'image')} in progress; "
        "try again when one of them is done"
    ),
    RefusalReason.USER_CONCURRENT: lambda r: (
        f"you already have {plural(r.in_progress, 'image')} in progress "
        f"(the limit is {r.limit}); try again when one of them is done"
    ),
    RefusalReason.USER_INSTALLS_OFF: lambda r: (
        "the bot can't be used as an app installed to your account right now; "
        "try it in a server that has added it"
    ),
}


def refusal_reason(refusal: Refusal) -> str:
    """Why, as the end of "Sorry, …" (e.g. "you have used your 25 images for today")."""
    return _REASONS[refusal.reason](refusal)


def refusal_sentence(refusal: Refusal) -> str:
    """The reason as a sentence for the member (the blocked term, if any, is named)."""
    detail = f" ({refusal.blocked_term})" if refusal.blocked_term else ""
    return f"Sorry, {refusal_reason(refusal)}{detail}."


def refusal_message(refusal: Refusal) -> str:
    """The one ephemeral line a refused member reads: why, and when to try again."""
    return refusal_text(refusal_sentence(refusal), refusal.retry_at)


# ---- /imagine-admin input ---------------------------------------------------------------------

_TERM_PROBLEMS: Final[Mapping[TermProblem, str]] = {
    TermProblem.NO_LETTER_OR_DIGIT: "it must contain at least one letter or digit",
    TermProblem.TOO_MANY_WILDCARDS: f"it may contain at most {MAX_WILDCARDS} `*`",
    TermProblem.TOO_LONG: f"it is longer than {MAX_TERM_CHARS} characters",
}


def _smallest(name: LimitName) -> str:
    """The smallest value that sets a limit rather than lifting it."""
    return f"${SMALLEST_SPEND_USD:.2f}" if LIMITS[name].unit is Unit.USD else "1"


def admin_error_text(error: AdminInputError) -> str:
    """What a moderator reads when `GuildAdmin` can't apply their input."""
    label = LIMIT_LABELS[error.limit] if error.limit is not None else ""
    match error.problem:
        case AdminProblem.LIMIT_OUT_OF_RANGE:
            return f"{label} must be between 0 and {error.maximum:g}."
        case AdminProblem.NOT_A_WHOLE_NUMBER:
            return f"{label} must be a whole number."
        case AdminProblem.WINDOW_TOO_SHORT:
            return "The window must be at least 1 minute long."
        case AdminProblem.NO_ROLE_LIMIT_GIVEN:
            return "Give at least one of per_window, concurrent or daily (0 means unlimited)."
        case AdminProblem.ROLE_LIMIT_OUT_OF_RANGE:
            return f"{error.role_limit} must be between 0 and {int(error.maximum):,}."
        case AdminProblem.TERM_NOT_BLOCKABLE:
            assert error.term_problem is not None
            return f"That word can't be blocked: {_TERM_PROBLEMS[error.term_problem]}."
        case AdminProblem.TOO_MANY_TERMS:
            return f"This server already blocks {int(error.maximum)} words; remove some first."
        case AdminProblem.TOO_MANY_CHANNELS:
            return f"At most {int(error.maximum)} channels can be allowed."
        case AdminProblem.SPEND_BELOW_A_CENT:
            return (
                f"{label} must be 0 (no cap) or at least ${error.minimum:.2f}: "
                "a smaller amount would round to no cap at all."
            )
        case AdminProblem.ABOVE_HOST_CEILING:
            assert error.limit is not None
            ceiling = format_limit(error.limit, error.maximum)
            what = f"A role's {error.role_limit}" if error.role_limit else label
            return (
                f"{what} can be at most {ceiling} on this bot: its host set that ceiling "
                f"for every server, so choose a value from {_smallest(error.limit)} to "
                f"{ceiling} (0, unlimited, would be above it too)."
            )
