"""Column types shared by the migrations and the query-side schema."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Float, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# SQLite only auto-numbers a column declared exactly `INTEGER PRIMARY KEY`.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class UtcTimestamp(TypeDecorator[dt.datetime]):
    """An aware UTC datetime stored as float seconds since the epoch.

    One representation on both backends: ordering and range queries are plain number
    comparisons, and no driver can silently drop the time zone.
    """

    impl = Float
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware datetimes")
        return value.timestamp()

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
