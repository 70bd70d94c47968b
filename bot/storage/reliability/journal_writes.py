"""The journal writes every new job makes on its way to Novita, group-committed.

A job may not be submitted before its journal row (and then its "submitting" mark) is durable,
or a crash could lose or repeat a paid task; nor may anything follow its post before its
"delivered" mark, or a crash could post it twice. One transaction per job made those two writes the
largest database cost of a burst; here the writes that arrive while one transaction runs are
committed together in the next (`bot.batching.Batcher`), and each job still waits for its own.

Once Novita has the task, its id must land too, but nobody waits for it: `SubmittedTasks`
collects the ids and writes them through the in-order `WriteOutbox` (retried through outages),
all that have gathered in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.batching import Batcher
from bot.storage.reliability.outage import is_database_unavailable
from bot.storage.reliability.outbox import WriteOutbox
from bot.storage.repositories.journal import JobJournal, JournalEntry


class JournalUnavailableError(Exception):
    """A job's "submitting" mark could not be written (the database is down or stalled): the
    job is stopped before anything is sent, and refunded."""


class JournalWrites:
    def __init__(self, journal: JobJournal) -> None:
        self.journal = journal
        self._records: Batcher[JournalEntry, None] = Batcher(
            self._record, name="journal-record")
        self._submitting: Batcher[int, bool] = Batcher(
            self._mark_submitting, name="journal-submitting")
        self._delivered: Batcher[int, None] = Batcher(
            self._mark_delivered, name="journal-delivered")

    async def record(self, entry: JournalEntry) -> None:
        """Return once `entry` is committed (with whatever else was waiting)."""
        await self._records.submit(entry)

    async def mark_submitting(self, job_id: int) -> bool:
        """Once the mark is committed: whether it landed (False: the job has no journal row)."""
        return await self._submitting.submit(job_id)

    async def mark_delivered(self, job_id: int) -> None:
        await self._delivered.submit(job_id)

    async def close(self) -> None:
        await self._records.close()
        await self._submitting.close()
        await self._delivered.close()

    async def _record(self, entries: Sequence[JournalEntry]) -> list[None]:
        await self.journal.record_many(entries)
        return [None] * len(entries)

    async def _mark_submitting(self, job_ids: Sequence[int]) -> list[bool]:
        marked = await self.journal.mark_submitting_many(job_ids)
        return [job_id in marked for job_id in job_ids]

    async def _mark_delivered(self, job_ids: Sequence[int]) -> list[None]:
        await self.journal.mark_delivered_many(job_ids)
        return [None] * len(job_ids)


class SubmittedTasks:
    """Task ids of submitted jobs, written in batches through the outbox.

    Order is kept: an id is written by an outbox item queued no later than the moment it was
    added, so before any write the job queues after that (its end, above all).
    """

    def __init__(self, journal: JobJournal, outbox: WriteOutbox) -> None:
        self.journal = journal
        self.outbox = outbox
        self._waiting: list[tuple[int, str]] = []
        self._queued = False  # an outbox item that has not started yet will take what waits

    def add(self, job_id: int, task_id: str) -> None:
        self._waiting.append((job_id, task_id))
        if not self._queued:
            self._queued = True
            self.outbox.put("task ids of submitted jobs", self._write)

    async def _write(self) -> None:
        batch, self._waiting = self._waiting, []
        self._queued = False  # ids added from now on need an item of their own, queued later
        if not batch:
            return
        try:
            await self.journal.mark_submitted_many(batch)
        except Exception as error:
            if is_database_unavailable(error):
                self._waiting[:0] = batch  # the outbox retries this item: they go with it
            raise  # anything else is a bug: the outbox logs it and moves on
