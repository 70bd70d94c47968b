"""What has been used: images and spend, with money in micro-dollars so sums are exact."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MICRO: Final = 1_000_000  # money is counted in micro-dollars so sums are exact


def usd_to_micro(usd: float) -> int:
    return round(usd * MICRO)


@dataclass(frozen=True)
class Usage:
    """What the ledger says right now, for one member in one guild (counted jobs only).

    `bot.storage.repositories.ledger.UsageLedger.counts` reads it, `evaluate` judges it.
    """

    window_starts: Sequence[dt.datetime] = ()  # start times inside the window, oldest first
    user_today: int = 0
    user_active: int = 0
    guild_active: int = 0
    guild_today: int = 0
    guild_spent_today_microusd: int = 0
    bot_spent_today_microusd: int = 0
