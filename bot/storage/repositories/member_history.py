"""A member's own past images (`/imagine-history`), and where each image was posted.

Privacy is in the signatures: every read takes the member's id and the place they asked from
(a server, or direct messages), so nothing here can return another member's rows or rows from
another server. Where a result was posted is recorded on delivery and forgotten when Discord
reports the message deleted, so history only links to messages that still exist.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Final

from bot.jobs.model import DIRECT_MESSAGES
from bot.storage.repositories.ledger import HistoryPage, UsageLedger

log = logging.getLogger(__name__)

MEMBER_HISTORY_PAGE_SIZE: Final = 6


def page_count(page: HistoryPage) -> int:
    return max(1, -(-page.total // page.limit))


class MemberHistory:
    def __init__(self, ledger: UsageLedger) -> None:
        self._ledger = ledger

    async def page(self, user_id: int, guild_id: int | None, page: int = 1) -> HistoryPage:
        """One page (1-based, newest first) of this member's jobs in this server (None: DMs);
        past the last page, the last page."""
        place = guild_id or DIRECT_MESSAGES
        page = max(1, page)
        found = await self._read(place, user_id, page)
        last = page_count(found)
        if page > last and found.total:
            found = await self._read(place, user_id, last)
        return found

    async def record_result_message(self, job_id: int, channel_id: int, message_id: int) -> None:
        await self._ledger.record_result_message(job_id, channel_id, message_id)

    async def forget_messages(self, message_ids: Collection[int]) -> int:
        forgotten = await self._ledger.forget_result_messages(message_ids)
        if forgotten:
            log.info("%d result message(s) deleted; no longer linked from history", forgotten)
        return forgotten

    async def _read(self, place: int, user_id: int, page: int) -> HistoryPage:
        return await self._ledger.history(
            place,
            user_id=user_id,
            offset=(page - 1) * MEMBER_HISTORY_PAGE_SIZE,
            limit=MEMBER_HISTORY_PAGE_SIZE,
        )
