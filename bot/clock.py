"""The two kinds of clock every repository and service takes, so tests can set the time.

`WallClock` tells the date (aware UTC datetimes: stored, compared with Discord's timestamps);
`Monotonic` measures intervals in seconds (deadlines, rate windows, polling), never jumps.
`Sleep` waits on the monotonic clock; tests pass a manual clock's sleep instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

WallClock = Callable[[], dt.datetime]
Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
