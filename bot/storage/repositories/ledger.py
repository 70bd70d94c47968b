"""The usage ledger: one row per generation, the single source of truth for limits and spend.

Because limits are counted from these rows (not from memory), they survive restarts and hold
across processes sharing the database. A row's status says whether it counts:

    reserved ──▶ submitted ──▶ succeeded            counted
        │            ├──────▶ cancelled            counted (Novita bills a submitted task)
        │            └──────▶ failed               not counted (refunded)
        └──▶ refunded                              not counted (never reached Novita)

A finished job's status is its outcome (`JobOutcome`): the caller says how the job ended, and
`finish` stores it, turning `cancelled` into `refunded` for a job that never reached Novita
(unless the caller says its submit was sent: `billed`).

Spend is what Novita bills, which is not always what counts against a member: `billed` rows
(the submit was sent, whatever happened after: a timeout, a failed download or upload, a submit
in doubt after a restart) count in spend and spend caps even when failed or refunded to their
member (`in_spend`). A task Novita reports FAILED is assumed unbilled. `waived` rows (a
moderator reset someone's quota) stop counting against limits but still count as money spent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    case,
    func,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.clock import WallClock, utc_now
from bot.jobs.model import JobOutcome, JobStatus
from bot.storage.database import Database
from bot.storage.repositories.ledger_rows import (
    ACTIVE,
    ACTIVE_VALUES,
    COUNTED_VALUES,
    DailyUsage,
    GuildTotals,
    HistoryPage,
    LedgerEntry,
    NewRow,
    UsageSummary,
    UsageWindow,
    day_number,
    day_of,
    entry_from_row,
    in_spend,
    member_usage,
)
from bot.storage.schema import usage_daily, usage_ledger
from bot.usage import Usage

__all__ = [
    "ACTIVE",
    "DailyUsage",
    "GuildTotals",
    "HistoryPage",
    "JobOutcome",
    "JobStatus",
    "LedgerEntry",
    "NewRow",
    "UsageLedger",
    "UsageSummary",
    "UsageWindow",
    "member_usage",
]


class UsageLedger:
    def __init__(self, db: Database, clock: WallClock = utc_now) -> None:
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
                t.c.status.in_(COUNTED_VALUES),
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
        is_active = and_(t.c.status.in_(ACTIVE_VALUES), t.c.created_at > bounds.active_since)
        is_today = t.c.created_at >= bounds.day_start
        counted = t.c.status.in_(COUNTED_VALUES)
        counts_limits = and_(is_today, counted, t.c.waived.is_(False))
        rows = await conn.execute(
            select(
                t.c.guild_id,
                func.coalesce(func.sum(case((is_active, 1), else_=0)), 0),
                func.coalesce(func.sum(case((counts_limits, 1), else_=0)), 0),
                func.coalesce(func.sum(case((is_today, t.c.cost_microusd), else_=0)), 0),
            )
            .where(
                t.c.guild_id.in_(sorted(set(guild_ids))),
                in_spend(t),
                t.c.created_at >= min(bounds.day_start, bounds.active_since),
            )
            .group_by(t.c.guild_id)
        )
        return {
            int(guild): GuildTotals(int(active), int(today), int(spent))
            for guild, active, today, spent in rows
        }

    async def bot_spent(self, conn: AsyncConnection, day_start: dt.datetime) -> int:
        """Spend (`in_spend`) of the whole bot since `day_start`, in the caller's transaction."""
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
        async with self._db.write() as conn:
            return await self.mark_submitted_in(conn, job_id, task_id)

    async def mark_submitted_in(self, conn: AsyncConnection, job_id: int, task_id: str) -> bool:
        """`mark_submitted` inside the caller's transaction (the journal writes beside it)."""
        return await self._transition(
            conn,
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
        billed: bool = False,
    ) -> bool:
        """Close an active row with how the job ended; False if it was already closed.

        `billed`: its submit was sent (answered or not), so Novita may bill it: it counts in
        spend whatever the outcome. `cancelled` on a row that never reached Novita (no task
        recorded, not `billed`) becomes `refunded`.
        """
        async with self._db.write() as conn:
            return await self.finish_in(
                conn, job_id, outcome, task_id=task_id, error=error, timings=timings,
                billed=billed,
            )

    async def finish_in(
        self,
        conn: AsyncConnection,
        job_id: int,
        outcome: JobOutcome,
        *,
        task_id: str | None = None,
        error: str | None = None,
        timings: Mapping[str, float] | None = None,
        billed: bool = False,
    ) -> bool:
        """`finish` inside the caller's transaction (the journal forgets the job beside it)."""
        if outcome in ACTIVE:
            raise ValueError(f"{outcome} is not how a job ends")
        values: dict[str, Any] = {"finished_at": self._clock()}
        if billed or outcome is JobStatus.SUCCEEDED:
            values["billed"] = True
        if task_id is not None:
            values["task_id"] = task_id
        if error is not None:
            values["error"] = error[:200]
        if timings is not None:
            values["timings"] = json.dumps(dict(timings), sort_keys=True)
        if outcome is JobStatus.CANCELLED:
            if not billed and await self._transition(
                conn, job_id, {JobStatus.RESERVED}, JobStatus.REFUNDED, **values
            ):
                return True
            values["billed"] = True  # Novita has the task, or may have: it bills it
        return await self._transition(conn, job_id, ACTIVE, outcome, **values)

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

    async def record_result_message(self, job_id: int, channel_id: int, message_id: int) -> bool:
        """Remember where a job's image was posted (for the member's history); False: no row."""
        async with self._db.write() as conn:
            result = await conn.execute(
                update(usage_ledger)
                .where(usage_ledger.c.id == job_id)
                .values(result_channel_id=channel_id, result_message_id=message_id)
            )
        return bool(result.rowcount)

    async def forget_result_messages(self, message_ids: Collection[int]) -> int:
        """These messages were deleted: stop linking to them. Returns how many rows changed.

        Discord reports every deleted message the bot can see, nearly all of them not ours: an
        indexed read answers those without taking the write lock.
        """
        if not message_ids:
            return 0
        wanted = usage_ledger.c.result_message_id.in_(sorted(set(message_ids)))
        async with self._db.read() as conn:
            found = (await conn.execute(select(usage_ledger.c.id).where(wanted))).scalars().all()
        if not found:
            return 0
        async with self._db.write() as conn:
            result = await conn.execute(
                update(usage_ledger)
                .where(wanted)
                .values(result_channel_id=None, result_message_id=None)
            )
        return int(result.rowcount)


    async def blank_prompt(self, job_id: int) -> bool:
        """The owner deleted the image: forget what they asked for (the row still counts)."""
        async with self._db.write() as conn:
            result = await conn.execute(
                update(usage_ledger).where(usage_ledger.c.id == job_id).values(prompt="")
            )
        return bool(result.rowcount)

    # --- reading ---------------------------------------------------------------------------
    async def get(self, job_id: int) -> LedgerEntry | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(usage_ledger).where(usage_ledger.c.id == job_id))
            ).mappings().first()
        return None if row is None else entry_from_row(row)

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
            entries = [entry_from_row(row) for row in rows.mappings()]
        return HistoryPage(entries, int(total), offset, limit)

    async def spent_microusd(self, since: dt.datetime, guild_id: int | None = None) -> int:
        """Estimated spend (`in_spend`) since `since` (one guild, or the whole bot)."""
        async with self._db.read() as conn:
            return await self._spent(conn, since, guild_id)

    async def summary(self, since: dt.datetime, guild_id: int | None = None) -> UsageSummary:
        """Jobs since `since`: rows, plus the daily totals of rows past retention (a day counts
        whole once any of it is in range)."""
        t, d = usage_ledger, usage_daily
        where = [t.c.created_at >= since]
        rolled = [d.c.day >= day_of(since)]
        if guild_id is not None:
            where.append(t.c.guild_id == guild_id)
            rolled.append(d.c.guild_id == guild_id)
        async with self._db.read() as conn:
            by_status: dict[str, int] = {}
            for status, n in await conn.execute(
                select(t.c.status, func.count()).where(*where).group_by(t.c.status)
            ):
                by_status[str(status)] = by_status.get(str(status), 0) + int(n)
            for status, n in await conn.execute(
                select(d.c.status, func.sum(d.c.jobs)).where(*rolled).group_by(d.c.status)
            ):
                by_status[str(status)] = by_status.get(str(status), 0) + int(n or 0)
            counted = and_(*where, t.c.status.in_(COUNTED_VALUES))
            counted_rolled = and_(*rolled, d.c.status.in_(COUNTED_VALUES))
            (images,) = await _sums(conn, t, counted, "images")
            (spent,) = await _sums(conn, t, and_(*where, in_spend(t)), "cost_microusd")
            (old_images,) = await _sums(conn, d, counted_rolled, "images")
            (old_spent,) = await _sums(conn, d, and_(*rolled), "spent_microusd")
            members = union(
                select(t.c.user_id).where(counted), select(d.c.user_id).where(counted_rolled)
            ).subquery()
            users = (await conn.execute(select(func.count()).select_from(members))).scalar_one()
        return UsageSummary(
            jobs=sum(by_status.values()),
            succeeded=by_status.get(JobStatus.SUCCEEDED, 0),
            failed=by_status.get(JobStatus.FAILED, 0),
            images=int(images) + int(old_images),
            spent_microusd=int(spent) + int(old_spent),
            users=int(users),
            by_status=by_status,
        )

    async def top_users(
        self, since: dt.datetime, guild_id: int, limit: int = 5
    ) -> list[tuple[int, int]]:
        """(user id, images) of the members who made the most images since `since`, most first
        (daily totals past retention included)."""
        t, d = usage_ledger, usage_daily
        recent = select(t.c.user_id.label("user_id"), t.c.images.label("images")).where(
            t.c.guild_id == guild_id, t.c.created_at >= since, t.c.status.in_(COUNTED_VALUES)
        )
        rolled = select(d.c.user_id.label("user_id"), d.c.images.label("images")).where(
            d.c.guild_id == guild_id, d.c.day >= day_of(since), d.c.status.in_(COUNTED_VALUES)
        )
        both = recent.union_all(rolled).subquery()
        images = func.sum(both.c.images)
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(both.c.user_id, images)
                .group_by(both.c.user_id)
                .order_by(images.desc(), both.c.user_id)
                .limit(limit)
            )
            return [(int(user), int(count)) for user, count in rows]

    async def daily_usage(
        self, first_day: dt.datetime, days: int, guild_id: int
    ) -> list[DailyUsage]:
        """`days` UTC days from the midnight `first_day`, oldest first, empty days included."""
        t = usage_ledger
        start = first_day.astimezone(dt.UTC)
        end = start + dt.timedelta(days=days)
        async with self._db.read() as conn:
            day = day_number(t.c.created_at, start.timestamp(), conn.dialect.name)
            rows = await conn.execute(
                select(
                    day.label("day"),
                    t.c.status,
                    func.coalesce(func.sum(t.c.images), 0),
                    func.coalesce(func.sum(case((in_spend(t), t.c.cost_microusd), else_=0)), 0),
                )
                .where(t.c.guild_id == guild_id, t.c.created_at >= start, t.c.created_at < end)
                .group_by(day, t.c.status)
            )
            found = [(int(n), JobStatus(status), int(i), int(c)) for n, status, i, c in rows]
        images: list[dict[JobStatus, int]] = [{} for _ in range(days)]
        spent = [0] * days
        for number, status, count, cost in found:
            if 0 <= number < days:  # a float edge case at midnight stays out rather than crash
                images[number][status] = images[number].get(status, 0) + count
                spent[number] += cost
        return [
            DailyUsage(start.date() + dt.timedelta(days=n), images[n], spent[n])
            for n in range(days)
        ]

    # --- internals -------------------------------------------------------------------------
    async def _spent(self, conn: AsyncConnection, since: dt.datetime, guild_id: int | None) -> int:
        t, d = usage_ledger, usage_daily
        where = [t.c.created_at >= since, in_spend(t)]
        rolled = [d.c.day >= day_of(since)]
        if guild_id is not None:
            where.append(t.c.guild_id == guild_id)
            rolled.append(d.c.guild_id == guild_id)
        (total,) = await _sums(conn, t, and_(*where), "cost_microusd")
        (old,) = await _sums(conn, d, and_(*rolled), "spent_microusd")
        return total + old

    async def _transition(
        self,
        conn: AsyncConnection,
        job_id: int,
        allowed_from: frozenset[JobStatus] | set[JobStatus],
        to: JobStatus,
        **values: Any,
    ) -> bool:
        result = await conn.execute(
            update(usage_ledger)
            .where(
                usage_ledger.c.id == job_id,
                usage_ledger.c.status.in_(sorted(str(s) for s in allowed_from)),
            )
            .values(status=str(to), **values)
        )
        return bool(result.rowcount)


async def _sums(
    conn: AsyncConnection, table: Table, where: ColumnElement[bool], *columns: str
) -> tuple[int, ...]:
    """The totals of `columns` over the rows `where` picks (0 where none): the ledger's recent
    rows and the daily totals past retention are summed alike."""
    totals = (
        await conn.execute(
            select(
                *(func.coalesce(func.sum(table.c[name]), 0, type_=Integer) for name in columns)
            ).where(where)
        )
    ).one()
    return tuple(int(total) for total in totals)
