"""Discord's daily session-start budget: read before logging in, refused below a safe margin.

Every gateway IDENTIFY (one per shard, each time a process starts) spends one of the bot's
session starts (1,000 a day for most bots, shared by every process and shard of the token);
RESUMEs are free. At zero Discord ends every session and resets the bot token, so a bot that
crash-loops under an automatic restart policy could lose its token. `ImagineBot.connect` reads
the budget from `GET /gateway/bot` (discord.py's own HTTP client) and raises `SessionBudgetLow`
when this start's IDENTIFYs would leave fewer than `DISCORD_MIN_SESSION_STARTS`; `run_bot` prints
its one line and exits with `EXIT_SESSION_BUDGET_LOW`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from discord.types.gateway import SessionStartLimit

# sysexits.h EX_TEMPFAIL ("try again later"): distinct from 1 (a crash) and 2 (bad settings or
# a rejected token), so a supervisor can tell "do not restart now" apart.
EXIT_SESSION_BUDGET_LOW: Final = 75


@dataclass(frozen=True)
class SessionBudget:
    """`session_start_limit` of `GET /gateway/bot`, with the reset in seconds."""

    total: int
    remaining: int
    reset_after: float  # seconds until `remaining` is back to `total`
    max_concurrency: int

    @classmethod
    def from_discord(cls, limit: SessionStartLimit) -> SessionBudget:
        """Discord sends `reset_after` in milliseconds."""
        return cls(
            total=int(limit["total"]),
            remaining=int(limit["remaining"]),
            reset_after=int(limit["reset_after"]) / 1000,
            max_concurrency=int(limit["max_concurrency"]),
        )


def may_start(budget: SessionBudget, shards: int, reserve: int) -> bool:
    """Whether `shards` IDENTIFYs fit and still leave `reserve` session starts unspent.

    Never true when the start itself does not fit, whatever the reserve: the IDENTIFY past the
    budget is the one that costs the token.
    """
    return budget.remaining - max(shards, 1) >= max(reserve, 0)


class SessionBudgetLow(Exception):
    """Raised before any IDENTIFY when `may_start` says no; `line` is what the operator reads."""

    def __init__(self, budget: SessionBudget, shards: int, reserve: int, now: datetime) -> None:
        self.budget, self.shards, self.reserve = budget, shards, reserve
        self.line = refusal_line(budget, shards, reserve, now)
        super().__init__(self.line)


def refusal_line(budget: SessionBudget, shards: int, reserve: int, now: datetime) -> str:
    resets_at = now + timedelta(seconds=budget.reset_after)
    return (
        f"Not logging in to Discord: {budget.remaining} of its {budget.total} daily session "
        f"starts are left, and this start needs {shards} (plus DISCORD_MIN_SESSION_STARTS="
        f"{reserve} kept in reserve). The budget resets in {span(budget.reset_after)} "
        f"({resets_at:%Y-%m-%d %H:%M} UTC). Find out why the bot keeps restarting, and start it "
        f"after that: spending the last ones makes Discord reset the bot token "
        f"(exit code {EXIT_SESSION_BUDGET_LOW}: do not restart now)."
    )


def start_line(budget: SessionBudget, shards: int) -> str:
    """The log line of every start that goes ahead."""
    return (
        f"Discord session starts: {budget.remaining} of {budget.total} left today, this start "
        f"uses {shards}; resets in {span(budget.reset_after)}"
    )


def span(seconds: float) -> str:
    """A duration as a person reads it: '3 h 12 min', '4 min', 'under a minute'."""
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
