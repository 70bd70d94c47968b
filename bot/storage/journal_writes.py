"""The journal writes every new job makes before it reaches Novita, group-committed.

A job may not be submitted before its journal row (and then its "submitting" mark) is durable,
or a crash could lose or repeat a paid task. One transaction per job made those two writes the
largest database cost of a burst; here the writes that arrive while one transaction runs are
committed together in the next (`bot.batching.Batcher`), and each job still waits for its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.batching import Batcher
from bot.storage.journal import JobJournal, JournalEntry


class JournalWrites:
    def __init__(self, journal: JobJournal) -> None:
        self.journal = journal
        self._records: Batcher[JournalEntry, None] = Batcher(
            self._record, name="journal-record")
        self._submitting: Batcher[int, None] = Batcher(
            self._mark_submitting, name="journal-submitting")

    async def record(self, entry: JournalEntry) -> None:
        """Return once `entry` is committed (with whatever else was waiting)."""
        await self._records.submit(entry)

    async def mark_submitting(self, job_id: int) -> None:
        await self._submitting.submit(job_id)

    async def close(self) -> None:
        await self._records.close()
        await self._submitting.close()

    async def _record(self, entries: Sequence[JournalEntry]) -> list[None]:
        await self.journal.record_many(entries)
        return [None] * len(entries)

    async def _mark_submitting(self, job_ids: Sequence[int]) -> list[None]:
        await self.journal.mark_submitting_many(job_ids)
        return [None] * len(job_ids)
