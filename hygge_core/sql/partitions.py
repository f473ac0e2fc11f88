"""Split a key column's [MIN, MAX] into disjoint half-open ranges for a parallel read.

Only integer, date and timestamp keys are split: their values have an order the
server and Python agree on, and evenly spaced bounds are simple arithmetic.
Timestamp bounds fall on whole seconds, a value every SQL datetime type can hold
(SQL Server rejects ``CAST('...123456' AS datetime)``). The split is by value,
not by row, so skewed keys give uneven ranges; ranges that hold no rows cost one
empty query each.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hygge_core.errors import HomeError
from hygge_core.sql.dialect import KeyRange

_EPOCH = dt.datetime(1970, 1, 1)


def plan_ranges(column: str, low: Any, high: Any, count: int, *, declared: str | None = None, label: str = "") -> list[KeyRange]:
    """At most ``count`` ranges covering every key (and NULLs, in the first), whatever is inserted meanwhile.

    ``low``/``high`` are MIN/MAX of the key in the run's window (``None`` when it
    holds no non-NULL key: then one range reads the whole window). The first
    range has no lower bound and the last no upper bound, so the ranges cover
    the whole key domain, not only what was there when MIN and MAX were read.
    """
    if low is None or high is None or count <= 1:
        return [KeyRange(column, None, None, nulls=True, declared=declared)]
    bounds = _inner_bounds(low, high, count, column, label)
    edges: list[Any | None] = [None, *bounds, None]
    return [KeyRange(column, edges[i], edges[i + 1], nulls=i == 0, declared=declared) for i in range(len(edges) - 1)]


def _inner_bounds(low: Any, high: Any, count: int, column: str, label: str) -> list[Any]:
    """The ``count - 1`` (or fewer, when the span is narrower) strictly increasing split points."""
    if isinstance(low, bool) or isinstance(high, bool) or type(low) is not type(high):
        raise _unsplittable(low, column, label)
    if isinstance(low, int):
        return _split(low, high, count)
    if isinstance(low, dt.datetime):
        tz = low.tzinfo
        epoch = _EPOCH.replace(tzinfo=dt.UTC) if tz is not None else _EPOCH
        if (high.tzinfo is None) != (tz is None):
            raise _unsplittable(low, column, label)
        seconds = _split(int((low - epoch).total_seconds() // 1), int((high - epoch).total_seconds() // 1), count)
        return [(epoch + dt.timedelta(seconds=s)).astimezone(tz) if tz else epoch + dt.timedelta(seconds=s) for s in seconds]
    if isinstance(low, dt.date):
        return [dt.date.fromordinal(day) for day in _split(low.toordinal(), high.toordinal(), count)]
    raise _unsplittable(low, column, label)


def _split(low: int, high: int, count: int) -> list[int]:
    """Split points of the integers ``low..high`` into ``min(count, span)`` nearly equal runs."""
    span = high - low + 1
    pieces = min(count, span)
    points = [low + span * i // pieces for i in range(1, pieces)]
    return sorted(set(points))


def _unsplittable(value: Any, column: str, label: str) -> HomeError:
    return HomeError(
        f"{label}: home.partitions.column {column!r} holds {type(value).__name__} values; "
        "partition on an integer, date or timestamp column"
    )


__all__ = ["plan_ranges"]
