"""The usage ledger: one row per generation, the single source of truth for limits and spend.

Because limits are counted from these rows (not from memory), they survive restarts and hold
across processes sharing the database. A row's status says whether it counts:

    reserved ──▶ submitted ──▶ succeeded            counted
        │            ├──────▶ cancelled            counted (Novita bills a submitted task)
        │            └──────▶ failed               not counted (refunded)
        └──▶ refunded                              not counted (never reached Novita)

A finished job's status is its outcome (`JobOutcome`): the caller says how the job ended, and
`finish` stores it, turning `cancelled` into `refunded` for a job that never reached Novita.
`waived` rows (a moderator reset someone's quota) stop counting against limits but still count
as money spent.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import Integer, RowMapping, and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.clock import Clock, utc_now
from bot.limits.policy import MICRO, Usage
from bot.storage.database import Database
from bot.storage.schema import usage_ledger


class JobStatus(enum.StrEnum):
    RESERVED = "reserved"  # admitted, not yet at Novita
    SUBMITTED = "submitted"  # Novita has the task
    SUCCEEDED = "succeeded"  # counts
    CANCELLED = "cancelled"  # counts (Novita bills a submitted task)
    FAILED = "failed"  # failed upstream: refunded
    REFUNDED = "refunded"  # stopped before it reached Novita (refused, or cancelled early)


# How a job can end: what `finish` accepts.
JobOutcome = Literal[
    JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.REFUNDED
]

COUNTED: Final = frozenset(
    {JobStatus.RESERVED, JobStatus.SUBMITTED, JobStatus.SUCCEEDED, JobStatus.CANCELLED}
)
ACTIVE: Final = frozenset({JobStatus.RESERVED, JobStatus.SUBMITTED})
_COUNTED_VALUES: Final = sorted(str(s) for s in COUNTED)
_ACTIVE_VALUES: Final = sorted(str(s) for s in ACTIVE)


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


class UsageLedger:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    # --- inside the caller's (locked) transaction ------------------------------------------
    async def counts(
        self, conn: AsyncConnection, guild_id: int, user_id: int, bounds: UsageWindow
    ) -> Usage:
        """Counted usage for one member and their guild; run it under the admission lock."""
        earliest = min(bounds.window_start, bounds.day_start, bounds.active_since)
        rows = await self.member_rows(conn, [(guild_id, user_id)], earliest)
        totals = await self.guild_totals(conn, [guild_id], bounds)
        bot_spent = await self._spent(conn, bounds.day_start, None)
        return member_usage(
            rows.get((guild_id, user_id), []), bounds, totals.get(guild_id, GuildTotals()),
            bot_spent,
        )

    async def member_rows(
        self, conn: AsyncConnection, members: Collection[tuple[int, int]], since: dt.datetime
    ) -> dict[tuple[int, int], list[tuple[dt.datetime, str]]]:
        """(created_at, status) of each member's counted rows since `since`, by (guild, user).

        One query for a whole admission batch; run it under the admission lock.
        """
        t = usage_ledger
        guilds = sorted({guild for guild, _ in members})
        users = sorted({user for _, user in members})
        wanted = set(members)
        rows = await conn.execute(
            select(t.c.guild_id, t.c.user_id, t.c.created_at, t.c.status).where(
                t.c.guild_id.in_(guilds),
                t.c.user_id.in_(users),
                t.c.created_at >= since,
                t.c.status.in_(_COUNTED_VALUES),
                t.c.waived.is_(False),
            )
        )
        found: dict[tuple[int, int], list[tuple[dt.datetime, str]]] = {}
        for guild, user, created, status in rows:
            key = (int(guild), int(user))
            if key in wanted:  # the IN lists also match other pairs of these guilds and users
                found.setdefault(key, []).append((created, status))
        return found

    async def guild_totals(
        self, conn: AsyncConnection, guild_ids: Collection[int], bounds: UsageWindow
    ) -> dict[int, GuildTotals]:
        """Running jobs, jobs today and spend today of each guild (one query for them all)."""
        t = usage_ledger
        is_active = and_(t.c.status.in_(_ACTIVE_VALUES), t.c.created_at > bounds.active_since)
        is_today = t.c.created_at >= bounds.day_start
        counts_limits = and_(is_today, t.c.waived.is_(False))
        rows = await conn.execute(
            select(
                t.c.guild_id,
                func.coalesce(func.sum(case((is_active, 1), else_=0)), 0),
                func.coalesce(func.sum(case((counts_limits, 1), else_=0)), 0),
                func.coalesce(func.sum(case((is_today, t.c.cost_microusd), else_=0)), 0),
            )
            .where(
                t.c.guild_id.in_(sorted(set(guild_ids))),
                t.c.status.in_(_COUNTED_VALUES),
                t.c.created_at >= min(bounds.day_start, bounds.active_since),
            )
            .group_by(t.c.guild_id)
        )
        return {
            int(guild): GuildTotals(int(active), int(today), int(spent))
            for guild, active, today, spent in rows
        }

    async def bot_spent(self, conn: AsyncConnection, day_start: dt.datetime) -> int:
        """Spend on counted jobs of the whole bot since `day_start`, in the caller's transaction."""
        return await self._spent(conn, day_start, None)

    async def insert(
        self,
        conn: AsyncConnection,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        prompt: str,
        size: str,  # "W*H"
        created_at: dt.datetime,
        images: int = 1,
        cost_microusd: int = 0,
        reroll_of: int | None = None,
    ) -> int:
        """Add a `reserved` row and return its id: the job id."""
        result = await conn.execute(
            usage_ledger.insert()
            .values(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                prompt=prompt,
                size=size,
                images=images,
                cost_microusd=cost_microusd,
                status=str(JobStatus.RESERVED),
                waived=False,
                reroll_of=reroll_of,
                created_at=created_at,
            )
            .returning(usage_ledger.c.id)
        )
        return int(result.scalar_one())

    async def insert_many(self, conn: AsyncConnection, rows: Sequence[NewRow]) -> list[int]:
        """Add `reserved` rows in one statement; their job ids, in the order given."""
        if not rows:
            return []
        params = [
            {
                "guild_id": row.guild_id,
                "channel_id": row.channel_id,
                "user_id": row.user_id,
                "prompt": row.prompt,
                "size": row.size,
                "images": row.images,
                "cost_microusd": row.cost_microusd,
                "status": str(JobStatus.RESERVED),
                "waived": False,
                "reroll_of": row.reroll_of,
                "created_at": row.created_at,
            }
            for row in rows
        ]
        # SQLAlchemy's "insertmanyvalues" sends these as multi-row INSERTs. Asking it to return
        # rows in parameter order would make SQLite go row by row, so ids are matched back by
        # content instead: rows alike in every returned column are interchangeable.
        t = usage_ledger
        key_columns = (t.c.guild_id, t.c.user_id, t.c.channel_id, t.c.prompt, t.c.size,
                       t.c.reroll_of, t.c.images, t.c.cost_microusd)
        result = await conn.execute(t.insert().returning(t.c.id, *key_columns), params)
        ids_by_key: dict[tuple[Any, ...], list[int]] = {}
        for job_id, *key in result:
            ids_by_key.setdefault(tuple(key), []).append(int(job_id))
        for ids in ids_by_key.values():
            ids.sort(reverse=True)  # the smallest id to the first of alike rows
        names = [column.name for column in key_columns]
        return [ids_by_key[tuple(p[name] for name in names)].pop() for p in params]

    # --- life cycle of one row -------------------------------------------------------------
    async def mark_submitted(self, job_id: int, task_id: str) -> bool:
        """Record the upstream task; False if the row is not waiting to be submitted."""
        return await self._transition(
            job_id,
            {JobStatus.RESERVED},
            JobStatus.SUBMITTED,
            task_id=task_id,
            submitted_at=self._clock(),
        )

    async def finish(
        self,
        job_id: int,
        outcome: JobOutcome,
        *,
        task_id: str | None = None,
        error: str | None = None,
        timings: Mapping[str, float] | None = None,
    ) -> bool:
        """Close an active row with how the job ended; False if it was already closed.

        `cancelled` on a row that never reached Novita becomes `refunded`.
        """
        if outcome in ACTIVE:
            raise ValueError(f"{outcome} is not how a job ends")
        values: dict[str, Any] = {"finished_at": self._clock()}
        if task_id is not None:
            values["task_id"] = task_id
        if error is not None:
            values["error"] = error[:200]
        if timings is not None:
            values["timings"] = json.dumps(dict(timings), sort_keys=True)
        if outcome is JobStatus.CANCELLED:
            if await self._transition(job_id, {JobStatus.RESERVED}, JobStatus.REFUNDED, **values):
                return True
            return await self._transition(job_id, {JobStatus.SUBMITTED}, outcome, **values)
        return await self._transition(job_id, ACTIVE, outcome, **values)

    async def refund(self, job_id: int, *, error: str | None = None) -> bool:
        """The job never ran or failed: it stops counting against any limit or budget."""
        return await self.finish(job_id, JobStatus.REFUNDED, error=error)

    async def waive(self, guild_id: int, user_id: int, since: dt.datetime) -> int:
        """A moderator's reset: the member's jobs since `since` stop counting against limits."""
        async with self._db.write() as conn:
            result = await conn.execute(
                update(usage_ledger)
                .where(
                    usage_ledger.c.guild_id == guild_id,
                    usage_ledger.c.user_id == user_id,
                    usage_ledger.c.created_at >= since,
                    usage_ledger.c.waived.is_(False),
                )
                .values(waived=True)
            )
        return int(result.rowcount)

    # --- reading ---------------------------------------------------------------------------
    async def get(self, job_id: int) -> LedgerEntry | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(usage_ledger).where(usage_ledger.c.id == job_id))
            ).mappings().first()
        return None if row is None else _entry(row)

    async def history(
        self, guild_id: int, *, user_id: int | None = None, offset: int = 0, limit: int = 10
    ) -> HistoryPage:
        """Newest first, one page at a time, optionally for one member."""
        where = [usage_ledger.c.guild_id == guild_id]
        if user_id is not None:
            where.append(usage_ledger.c.user_id == user_id)
        async with self._db.read() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(usage_ledger).where(*where))
            ).scalar_one()
            rows = await conn.execute(
                select(usage_ledger)
                .where(*where)
                .order_by(usage_ledger.c.created_at.desc(), usage_ledger.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
            entries = [_entry(row) for row in rows.mappings()]
        return HistoryPage(entries, int(total), offset, limit)

    async def spent_microusd(self, since: dt.datetime, guild_id: int | None = None) -> int:
        """Estimated spend on counted jobs since `since` (one guild, or the whole bot)."""
        async with self._db.read() as conn:
            return await self._spent(conn, since, guild_id)

    async def summary(self, since: dt.datetime, guild_id: int | None = None) -> UsageSummary:
        t = usage_ledger
        where = [t.c.created_at >= since]
        if guild_id is not None:
            where.append(t.c.guild_id == guild_id)
        async with self._db.read() as conn:
            by_status = {
                str(status): int(n)
                for status, n in await conn.execute(
                    select(t.c.status, func.count()).where(*where).group_by(t.c.status)
                )
            }
            counted = and_(*where, t.c.status.in_(_COUNTED_VALUES))
            images, spent, users = (
                await conn.execute(
                    select(
                        func.coalesce(func.sum(t.c.images), 0),
                        func.coalesce(func.sum(t.c.cost_microusd), 0),
                        func.count(func.distinct(t.c.user_id)),
                    ).where(counted)
                )
            ).one()
        return UsageSummary(
            jobs=sum(by_status.values()),
            succeeded=by_status.get(JobStatus.SUCCEEDED, 0),
            failed=by_status.get(JobStatus.FAILED, 0),
            images=int(images),
            spent_microusd=int(spent),
            users=int(users),
            by_status=by_status,
        )

    async def top_users(
        self, since: dt.datetime, guild_id: int, limit: int = 5
    ) -> list[tuple[int, int]]:
        """(user id, images) of the members who made the most images since `since`, most first."""
        t = usage_ledger
        images = func.sum(t.c.images)
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(t.c.user_id, images)
                .where(
                    t.c.guild_id == guild_id,
                    t.c.created_at >= since,
                    t.c.status.in_(_COUNTED_VALUES),
                )
                .group_by(t.c.user_id)
                .order_by(images.desc(), t.c.user_id)
                .limit(limit)
            )
            return [(int(user), int(count)) for user, count in rows]

    # --- internals -------------------------------------------------------------------------
    async def _spent(self, conn: AsyncConnection, since: dt.datetime, guild_id: int | None) -> int:
        t = usage_ledger
        where = [t.c.created_at >= since, t.c.status.in_(_COUNTED_VALUES)]
        if guild_id is not None:
            where.append(t.c.guild_id == guild_id)
        total = (
            await conn.execute(
                select(func.coalesce(func.sum(t.c.cost_microusd), 0, type_=Integer)).where(*where)
            )
        ).scalar_one()
        return int(total)

    async def _transition(
        self,
        job_id: int,
        allowed_from: frozenset[JobStatus] | set[JobStatus],
        to: JobStatus,
        **values: Any,
    ) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                update(usage_ledger)
                .where(
                    usage_ledger.c.id == job_id,
                    usage_ledger.c.status.in_(sorted(str(s) for s in allowed_from)),
                )
                .values(status=str(to), **values)
            )
        return bool(result.rowcount)


def _entry(row: RowMapping) -> LedgerEntry:
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
    )
