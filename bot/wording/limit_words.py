"""Each limit in words: its label and how its value reads (`unlimited`, `10 minutes`, `$1.50`)."""

from __future__ import annotations

from typing import Final

from bot.limits.admin import LIMITS, LimitValue, Unit
from bot.limits.names import LimitName

# What moderators read for each limit (also the names of the command's choices, ≤ 100 chars).
LIMIT_LABELS: Final = {
    LimitName.PER_WINDOW: "Images per window (each member)",
    LimitName.WINDOW_MINUTES: "Window length in minutes",
    LimitName.USER_CONCURRENT: "Jobs at once (each member)",
    LimitName.USER_DAILY: "Images per day (each member)",
    LimitName.GUILD_CONCURRENT: "Jobs at once (whole server)",
    LimitName.GUILD_DAILY: "Images per day (whole server)",
    LimitName.GUILD_SPEND_USD: "Spend per day in USD (whole server)",
}


def format_limit(name: LimitName, value: LimitValue) -> str:
    """A limit's value as moderators read it: `unlimited`, `10 minutes`, `$1.50`, `5`."""
    spec = LIMITS[name]
    if spec.unit is Unit.MINUTES:
        minutes = int(value)
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    if value == 0:
        return "no cap" if spec.unit is Unit.USD else "unlimited"
    if spec.unit is Unit.USD:
        return f"${value:,.2f}"
    return f"{int(value):,}"
