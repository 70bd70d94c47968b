"""What `/imagine-history` shows a member: their own recent images, one page at a time. Pure.

Each line: outcome, when (a relative timestamp), size, a link to the image while its message
still exists, and the prompt (markdown and mentions escaped, shortened). Shown ephemerally.
"""

from __future__ import annotations

from typing import Final

from bot.jobs.model import JobStatus
from bot.storage.repositories.ledger import HistoryPage, LedgerEntry
from bot.storage.repositories.member_history import page_count
from bot.wording.admin_presentation import DESCRIPTION_LIMIT, bounded_lines
from bot.wording.cards import Card
from bot.wording.markup import relative_time
from bot.wording.presentation import BRAND_COLOUR, format_prompt

HISTORY_TITLE: Final = "🕘 Your images"
HISTORY_PROMPT_CHARS: Final = 200  # six entries stay far below the 4,096-character description
NOT_YOUR_HISTORY: Final = "These buttons belong to the member who asked for this history."
EMPTY: Final = "You haven't asked for any images here yet. Try `/imagine`."

_OUTCOMES: Final = {
    JobStatus.RESERVED: "⏳ waiting",
    JobStatus.SUBMITTED: "🎨 being drawn",
    JobStatus.SUCCEEDED: "✅ done",
    JobStatus.CANCELLED: "🛑 cancelled",
    JobStatus.FAILED: "❌ failed (not counted)",
    JobStatus.REFUNDED: "↩️ stopped before it started (not counted)",
}


def jump_url(entry: LedgerEntry) -> str | None:
    """The image's message, as Discord links it (`@me` for direct messages)."""
    if entry.result_channel_id is None or entry.result_message_id is None:
        return None
    place = entry.guild_id or "@me"
    return (
        f"https://discord.com/channels/{place}/{entry.result_channel_id}/{entry.result_message_id}"
    )


def history_line(entry: LedgerEntry) -> str:
    parts = [
        _OUTCOMES.get(entry.status, str(entry.status)),
        relative_time(entry.created_at),
        entry.size.replace("*", "×"),
    ]
    if entry.reroll_of:
        parts.append("re-roll")
    if entry.waived:
        parts.append("reset by a moderator")
    url = jump_url(entry)
    if url is not None:
        parts.append(f"[open]({url})")
    prompt = format_prompt(" ".join(entry.prompt.split()), HISTORY_PROMPT_CHARS)
    return " · ".join(parts) + f"\n> {prompt}"


def history_card(page: HistoryPage, *, in_dms: bool) -> Card:
    where = "in direct messages" if in_dms else "in this server"
    intro = f"Only you can see this: the images you asked for {where}, newest first.\n\n"
    lines = [history_line(entry) for entry in page.entries]
    number = page.offset // page.limit + 1
    total = f"{page.total:,} image{'' if page.total == 1 else 's'}"
    return Card(
        title=HISTORY_TITLE,
        description=intro
        + bounded_lines(lines, DESCRIPTION_LIMIT - len(intro), empty=EMPTY),
        colour=BRAND_COLOUR,
        footer=f"Page {number} of {page_count(page)} · {total}",
    )
