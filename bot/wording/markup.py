"""Discord's message markup, written without discord.py: escaping what a person typed, and
timestamps the client shows in each reader's own time.

The escapes are discord.py 2.x's `utils.escape_markdown` (default options: links left alone)
and `utils.escape_mentions`, character for character; tests/unit/wording/test_markup.py checks
them against discord.py on tricky inputs, so an upgrade that changes them shows up there.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

# discord.py's _URL_REGEX and _MARKDOWN_STOCK_REGEX (with _MARKDOWN_ESCAPE_COMMON), unchanged.
_URL: Final = r"(?P<url><[^: >]+:\/[^ >]+>|(?:https?|steam):\/\/[^\s<]+[^<.,:;\"\'\]\s])"
_MARKDOWN: Final = r"(?P<markdown>[_\\~|\*`]|^>(?:>>)?\s|\[.+\]\(.+\)|^#{1,3}|^\s*-)"
_MARKDOWN_OR_URL: Final = re.compile(f"(?:{_URL}|{_MARKDOWN})", re.MULTILINE)
_MENTION: Final = re.compile(r"@(everyone|here|[!&]?[0-9]{17,20})")


def _escaped(match: re.Match[str]) -> str:
    url = match.group("url")
    return url if url else "\\" + match.group("markdown")


def escape_markdown(text: str) -> str:
    """`text` shown as typed: every markdown character backslash-escaped, links left whole."""
    return _MARKDOWN_OR_URL.sub(_escaped, text)


def escape_mentions(text: str) -> str:
    """`@everyone`, `@here` and user/role mentions broken with a zero-width space."""
    return _MENTION.sub("@\u200b\\1", text)


def relative_time(moment: dt.datetime) -> str:
    """A timestamp the client shows as "in 5 minutes" / "2 hours ago" and keeps counting."""
    return f"<t:{int(moment.timestamp())}:R>"
