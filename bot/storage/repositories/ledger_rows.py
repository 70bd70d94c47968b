"""What the usage ledger stores and reports: statuses, rows, pages, daily and guild totals,
and the pure helpers that read them (no I/O). `bot.storage.repositories.ledger` re-exports these."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import ColumnElement, Float, Integer, RowMapping, Table, cast, func, or_

from bot.jobs.model import JobStatus
from bot.usage import MICRO, Usage

# Counted against the member's limits (unless waived) and, always, in spend.
COUNTED: Final = frozenset(
    {JobStatus.RESERVED, JobStatus.SUBMITTED, JobStatus.SUCCEEDED, JobStatus.CANCELLED}
)
ACTIVE: Final = frozenset({JobStatus.RESERVED, JobStatus.SUBMITTED})
SECONDS_PER_DAY: Final = 86_400
COUNTED_VALUES: Final = sorted(str(s) for s in COUNTED)
ACTIVE_VALUES: Final = sorted(str(s) for s in ACTIVE)


@dataclass(frozen=True)
class LedgerEntry:
    job_id: int
    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    size: str
    images: int
    cost_microusd: int
    status: JobStatus
    waived: bool
    reroll_of: int | None
    task_id: str | None
    error: str | None
    timings: Mapping[str, float]
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    finished_at: dt.datetime | None
    result_channel_id: int | None = None  # where the image was posted, while it still exists
    result_message_id: int | None = None
    billed: bool = False  # Novita has (or may have) billed it, whether the member is charged

    @property
    def in_spend(self) -> bool:
        """Whether it counts in spend figures and spend caps (what Novita bills)."""
        return self.status in COUNTED or self.billed

    @property
    def cost_usd(self) -> float:
        return self.cost_microusd / MICRO

    @property
    def counted(self) -> bool:
        return self.status in COUNTED and not self.waived


@dataclass(frozen=True)
class HistoryPage:
    entries: list[LedgerEntry]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.entries) < self.total


@dataclass(frozen=True)
class DailyUsage:
    """One UTC day of a guild's jobs: images by how they ended, and the estimated spend."""

    day: dt.date
    images_by_status: Mapping[JobStatus, int] = field(default_factory=dict)
    spent_microusd: int = 0  # what Novita billed (`in_spend`), as every spend cap counts it

    @property
    def spent_usd(self) -> float:
        return self.spent_microusd / MICRO


@dataclass(frozen=True)
class UsageWindow:
    """The instants that bound each count (all computed by the caller from one `now`)."""

    window_start: dt.datetime  # rows created strictly after this are in the rolling window
    day_start: dt.datetime
    active_since: dt.datetime  # older unfinished rows are presumed lost (crashed process)


@dataclass(frozen=True)
class UsageSummary:
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    images: int = 0
    spent_microusd: int = 0
    users: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)

    @property
    def spent_usd(self) -> float:
        return self.spent_microusd / MICRO


@dataclass(frozen=True)
class GuildTotals:
    active: int = 0
    today: int = 0  # counted against limits (not waived)
    spent_today_microusd: int = 0


@dataclass(frozen=True)
class NewRow:
    """One `reserved` row to add (`insert_many`)."""

    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    size: str  # "W*H"
    created_at: dt.datetime
    images: int = 1
    cost_microusd: int = 0
    reroll_of: int | None = None


def member_usage(
    rows: Sequence[tuple[dt.datetime, str]],
    bounds: UsageWindow,
    guild: GuildTotals,
    bot_spent_microusd: int,
) -> Usage:
    """One member's `Usage` from their counted rows (`member_rows`) and their guild's totals."""
    starts = sorted(created for created, _ in rows if created > bounds.window_start)
    return Usage(
        window_starts=tuple(starts),
        user_today=sum(1 for created, _ in rows if created >= bounds.day_start),
        user_active=sum(
            1 for created, status in rows if status in ACTIVE and created > bounds.active_since
        ),
        guild_active=guild.active,
        guild_today=guild.today,
        guild_spent_today_microusd=guild.spent_today_microusd,
        bot_spent_today_microusd=bot_spent_microusd,
    )


def day_number(
    created_at: ColumnElement[dt.datetime], start_epoch: float, dialect: str
) -> ColumnElement[int]:
    """Whole days since `start_epoch` (timestamps are stored as epoch seconds, see columns.py).

    Only rows at or after the start are asked for, so truncation is the floor; PostgreSQL's
    float → integer cast rounds instead, hence `floor` there (SQLite may lack it).
    """
    days = (cast(created_at, Float) - start_epoch) / SECONDS_PER_DAY
    if dialect == "postgresql":
        return cast(func.floor(days), Integer)
    return cast(days, Integer)


def day_of(moment: dt.datetime) -> dt.datetime:
    """00:00 UTC of the day `moment` falls in (daily totals are keyed by it)."""
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def entry_from_row(row: RowMapping) -> LedgerEntry:
    timings = json.loads(row["timings"]) if row["timings"] else {}
    return LedgerEntry(
        job_id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        prompt=row["prompt"],
        size=row["size"],
        images=row["images"],
        cost_microusd=row["cost_microusd"],
        status=JobStatus(row["status"]),
        waived=bool(row["waived"]),
        reroll_of=row["reroll_of"],
        task_id=row["task_id"],
        error=row["error"],
        timings=timings,
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        finished_at=row["finished_at"],
        result_channel_id=row["result_channel_id"],
        result_message_id=row["result_message_id"],
        billed=bool(row["billed"]),
    )


def in_spend(table: Table) -> ColumnElement[bool]:
    """Ledger rows that count in spend: counted ones (reservations included) and every job
    Novita has or may have billed, whether or not it counts against its member."""
    return or_(table.c.status.in_(COUNTED_VALUES), table.c.billed.is_(True))
