"""What a job counts as (`bot.jobs.lifecycle`): for its member and in spend, from the moment its
submit request leaves; and the journal's invariants (no submit without a durable "submitting"
mark, the "delivered" mark first after a post, settled on a restart without touching Discord).
Real journal and ledger, a fake display, a fake Novita on a manual clock."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from bot.imaging import ImageSize
from bot.jobs.active import ActiveJob
from bot.jobs.lifecycle import novita_may_bill
from bot.jobs.model import JobStage, JobStatus
from bot.novita.client import SUBMIT_SENT
from bot.novita.errors import (
    BadRequestError,
    ConnectionFailedError,
    ImageUnavailableError,
    JobTimeoutError,
    MalformedResponseError,
    TaskFailedError,
    TaskStoppedError,
    UpstreamUnavailableError,
)
from bot.novita.models import GeneratedImage, TaskStatus
from bot.storage.database import Database
from bot.storage.reliability.journal_writes import JournalUnavailableError
from bot.storage.repositories.journal import JournalEntry
from bot.storage.repositories.ledger import LedgerEntry
from fakes.clock import ManualClock, ManualUtcClock
from tests.unit.jobs.lifecycle_support import (
    CHANNEL,
    REPLY,
    FakeDisplay,
    Harness,
    HeldSlots,
    lifecycle_over,
)
from tests.unit.jobs.test_engine import FakeClient
from tests.unit.jobs.test_recovery import Rebuilt, recovery_for


@dataclass
class HeldSubmitClient(FakeClient):
    """Novita that has received the submit (the request left) and has not answered yet."""

    sent: asyncio.Event = field(default_factory=asyncio.Event)

    async def submit(self, prompt: str, size: ImageSize) -> str:
        tell = SUBMIT_SENT.get()
        assert tell is not None  # the lifecycle listens for the request leaving
        tell()
        self.sent.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@dataclass
class ExpiredImageClient(FakeClient):
    """The task succeeds, but its image is gone before it is fetched."""

    async def download(self, image: GeneratedImage, *, task_id: str | None = None) -> bytes:
        raise ImageUnavailableError("image URL expired", status=403, task_id=task_id)


async def ledger_row(h: Harness, job_id: int) -> LedgerEntry:
    entry = await h.repositories.ledger.get(job_id)
    assert entry is not None
    return entry


async def test_a_cancel_while_the_submit_is_in_flight_counts_for_the_member_and_in_spend(
    database: Database,
) -> None:
    clock = ManualClock()
    client = HeldSubmitClient(clock)
    async with lifecycle_over(database, client, clock) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        h.lifecycle.start(job_id, request, display, REPLY)
        await client.sent.wait()
        assert h.lifecycle.jobs.cancel(job_id, "alice")
        await h.lifecycle.jobs.wait_idle()

        assert display.calls == ["end_progress", "cancelled by alice"]
        assert display.cancel_counted is True  # "already sent: this one counts"
        entry = await ledger_row(h, job_id)
        assert (entry.status, entry.counted, entry.billed, entry.in_spend) == (
            JobStatus.CANCELLED, True, True, True)
        assert await h.journal_entry(job_id) is None


async def test_a_cancel_before_the_submit_refunds(database: Database) -> None:
    clock = ManualClock()
    client = FakeClient(clock)
    slots = HeldSlots()
    async with lifecycle_over(database, client, clock, slots=slots) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        h.lifecycle.start(job_id, request, display, REPLY)
        await slots.asked.wait()
        assert h.lifecycle.jobs.cancel(job_id, "alice")
        await h.lifecycle.jobs.wait_idle()

        assert display.cancel_counted is False
        assert client.submitted_at is None
        entry = await ledger_row(h, job_id)
        assert (entry.status, entry.counted, entry.in_spend) == (JobStatus.REFUNDED, False, False)


async def test_a_failure_after_novita_accepted_the_task_is_forgiven_but_stays_in_spend(
    database: Database,
) -> None:
    clock = ManualClock()
    async with lifecycle_over(database, ExpiredImageClient(clock, finish_after=5.0), clock) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        h.lifecycle.start(job_id, request, display, REPLY)
        await h.lifecycle.jobs.wait_idle()

        assert display.calls == ["end_progress", "failed"]
        entry = await ledger_row(h, job_id)
        assert (entry.status, entry.counted, entry.billed, entry.in_spend) == (
            JobStatus.FAILED, False, True, True)
        assert entry.task_id == "task-1"


async def test_a_task_novita_reports_failed_is_assumed_unbilled(database: Database) -> None:
    clock = ManualClock()
    client = FakeClient(clock, finish_after=5.0, final=TaskStatus.FAILED, reason="nope")
    async with lifecycle_over(database, client, clock) as h:
        job_id, request = await h.admit()
        h.lifecycle.start(job_id, request, FakeDisplay(), REPLY)
        await h.lifecycle.jobs.wait_idle()

        entry = await ledger_row(h, job_id)
        assert (entry.status, entry.billed, entry.in_spend) == (JobStatus.FAILED, False, False)


async def test_a_job_the_journal_missed_is_stopped_before_submitting_and_refunded(
    database: Database,
) -> None:
    clock = ManualClock()
    client = FakeClient(clock)
    async with lifecycle_over(database, client, clock) as h:
        job_id, request = await h.admit()
        display = FakeDisplay()
        job = ActiveJob(job_id=job_id, request=request, display=display,
                        started_monotonic=clock())
        h.lifecycle.launch(job)  # no journal row: its "submitting" mark cannot land
        await h.lifecycle.jobs.wait_idle()

        assert client.submitted_at is None  # never sent blind
        assert display.calls == ["end_progress", "failed"]
        assert isinstance(display.errors[0], JournalUnavailableError)
        entry = await ledger_row(h, job_id)
        assert (entry.status, entry.in_spend) == (JobStatus.REFUNDED, False)


async def test_the_delivered_mark_is_written_before_the_job_is_settled(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    async with lifecycle_over(database, FakeClient(clock, finish_after=5.0), clock) as h:
        journal = h.repositories.journal
        writes: list[str] = []
        mark_delivered, settle = journal.mark_delivered_many, journal.settle

        async def recording_mark(job_ids: Sequence[int]) -> None:
            entry = await journal.get(job_ids[0])
            writes.append(f"delivered after {entry.state if entry else None}")
            await mark_delivered(job_ids)

        async def recording_settle(job_id: int, *args: object, **kwargs: object) -> bool:
            entry = await journal.get(job_id)
            writes.append(f"settle from {entry.state if entry else None}")
            return await settle(job_id, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(journal, "mark_delivered_many", recording_mark)
        monkeypatch.setattr(journal, "settle", recording_settle)
        job_id, request = await h.admit()
        display = FakeDisplay()
        h.lifecycle.start(job_id, request, display, REPLY)
        await h.lifecycle.jobs.wait_idle()

        assert display.calls == ["end_progress", "deliver"]
        # (Whether the task id has landed by then is a race the mark does not depend on.)
        assert [w.split(" after ")[0] for w in writes] == ["delivered", "settle from delivered"]
        assert await h.status(job_id) is JobStatus.SUCCEEDED


async def test_a_delivered_job_is_settled_on_restart_without_touching_its_display(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    clock = ManualClock()
    client = FakeClient(clock)
    async with lifecycle_over(database, client, clock, utc_clock) as h:
        job_id, _ = await h.admit()
        await h.repositories.journal.record_many([JournalEntry(
            job_id=job_id, owner_id="dead-process", shard_id=0, channel_id=CHANNEL,
            user_id=30, guild_id=10, state=JobStage.DELIVERED,
        )])
        displays = Rebuilt()
        recovery = recovery_for(h, displays, utc_clock)
        assert await recovery.take_back() == []
        assert recovery.settled_delivered == [job_id]

        assert displays.displays == {}  # Discord is never touched
        assert client.submitted_at is None and client.poll_times == []
        entry = await ledger_row(h, job_id)
        assert (entry.status, entry.counted, entry.in_spend) == (JobStatus.SUCCEEDED, True, True)
        assert await h.journal_entry(job_id) is None


async def test_a_late_task_id_never_takes_back_the_delivered_mark(database: Database) -> None:
    clock = ManualClock()
    async with lifecycle_over(database, FakeClient(clock), clock) as h:
        job_id, _ = await h.admit()
        journal = h.repositories.journal
        await journal.record_many([JournalEntry(job_id, "me", 0, CHANNEL, 30)])
        assert await journal.mark_submitting_many([job_id, 999]) == {job_id}
        assert await journal.mark_submitting_many([job_id]) == set()  # only from waiting
        await journal.mark_delivered_many([job_id])
        await journal.mark_submitted_many([(job_id, "task-1")])  # the id landed late
        entry = await h.journal_entry(job_id)
        assert entry is not None and (entry.state, entry.task_id) == (
            JobStage.DELIVERED, "task-1")


async def test_a_submit_in_doubt_after_a_restart_is_forgiven_but_stays_in_spend(
    database: Database, utc_clock: ManualUtcClock
) -> None:
    clock = ManualClock()
    async with lifecycle_over(database, FakeClient(clock), clock, utc_clock) as h:
        in_doubt, _ = await h.admit()
        waiting_edit, _ = await h.admit()
        base = JournalEntry(job_id=0, owner_id="dead-process", shard_id=0, channel_id=CHANNEL,
                            user_id=30, guild_id=10)
        await h.repositories.journal.record_many([
            dataclasses.replace(base, job_id=in_doubt, state=JobStage.SUBMITTING),
            dataclasses.replace(base, job_id=waiting_edit, kind="edit"),  # never sent
        ])
        await recovery_for(h, Rebuilt(), utc_clock).take_back()
        await h.lifecycle.jobs.wait_idle()
        await asyncio.sleep(0)  # the stopped jobs' ends land through the outbox
        assert await h.lifecycle.outbox.flush(5) == 0

        doubt = await ledger_row(h, in_doubt)
        assert (doubt.status, doubt.counted, doubt.in_spend) == (JobStatus.REFUNDED, False, True)
        edit = await ledger_row(h, waiting_edit)
        assert (edit.status, edit.counted, edit.in_spend) == (JobStatus.REFUNDED, False, False)


@pytest.mark.parametrize(
    ("task_id", "sent", "error", "billed"),
    [
        (None, False, None, False),  # never sent: a cancel in the queue
        (None, True, None, True),  # sent, answer unknown: a cancel in flight
        ("t", True, None, True),  # accepted (a result too large to post, a cancel)
        ("t", True, ImageUnavailableError("expired", status=403), True),
        ("t", True, JobTimeoutError("late"), True),
        ("t", True, TaskFailedError("failed", reason="oom"), False),  # assumed unbilled
        ("t", True, TaskStoppedError("stopped", reason="EXPIRED"), True),  # not FAILED: billed
        (None, True, JobTimeoutError("no answer"), True),
        (None, True, UpstreamUnavailableError("connection reset"), True),
        (None, True, MalformedResponseError("garbled", status=200), True),
        (None, True, BadRequestError("bad", status=400), False),  # refused: no task
        (None, True, UpstreamUnavailableError("CREATE_TASK_FAILED", status=500), False),
        (None, True, ConnectionFailedError("no route"), False),  # never left the machine
        (None, False, JournalUnavailableError("stalled"), False),
    ],
)
def test_what_novita_may_bill(
    task_id: str | None, sent: bool, error: BaseException | None, billed: bool
) -> None:
    assert novita_may_bill(task_id, sent, error) is billed
