"""The one vocabulary of limits: the limits a moderator sets, and every reason a job is refused.

`LimitName` names each limit `/imagine-admin` can set (its values are the command's choices).
`RefusalReason` says why a job may not start: a refusal by one of those limits carries the
limit's own name as its value (`RefusalReason.PER_WINDOW.limit_name is LimitName.PER_WINDOW`);
the others are no moderator's number: the bot-wide spend cap the host sets, a ban, a channel,
a blocked term, the user-installed app switched off.
"""

from __future__ import annotations

import enum


class LimitName(enum.StrEnum):
    PER_WINDOW = "per_window"
    WINDOW_MINUTES = "window_minutes"  # how long the window is; it refuses nothing by itself
    USER_CONCURRENT = "user_concurrent"
    USER_DAILY = "user_daily"
    GUILD_CONCURRENT = "guild_concurrent"
    GUILD_DAILY = "guild_daily"
    GUILD_SPEND_USD = "guild_spend_usd"


class RefusalReason(enum.StrEnum):
    # A limit a moderator sets was reached.
    PER_WINDOW = LimitName.PER_WINDOW.value
    USER_CONCURRENT = LimitName.USER_CONCURRENT.value
    USER_DAILY = LimitName.USER_DAILY.value
    GUILD_CONCURRENT = LimitName.GUILD_CONCURRENT.value
    GUILD_DAILY = LimitName.GUILD_DAILY.value
    GUILD_SPEND_USD = LimitName.GUILD_SPEND_USD.value
    # Refusals that are not a moderator's limit.
    BOT_SPEND = "bot_spend"  # the bot-wide daily spend cap (a host setting)
    BANNED = "banned"
    CHANNEL = "channel"
    BLOCKED_TERM = "blocked_term"
    USER_INSTALLS_OFF = "user_installs_off"  # the host switched the user-installed app off

    @property
    def limit_name(self) -> LimitName | None:
        """The settable limit that refused (None: the refusal is not a moderator's limit)."""
        return _LIMIT_NAMES.get(self.value)


_LIMIT_NAMES: dict[str, LimitName] = {name.value: name for name in LimitName}
