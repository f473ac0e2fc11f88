"""Time partitions: an entity cut into periods (hours, days, weeks, months) that load and reload one at a time.

A partition key names one period the way Dagster's time-window partitions do
(``2024-01-31`` for daily, weekly and monthly, ``2024-01-31-13:00`` for hourly), so
a key typed on the command line and one chosen in Dagster's backfill dialog mean
the same rows. The engine owns the arithmetic (key to window, the latest complete
period, the cron a period ticks on), and the Dagster face builds its partitions
definition from the same three facts (``cron``, ``KEY_FORMATS``, the start).

Weeks start on Monday (ISO). Windows are half-open, ``[start, end)``, in the
configured timezone, so adjacent partitions never share a row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hygge_core.config import TimePartitionsConfig, TimePeriod
from hygge_core.errors import ConfigError

KEY_FORMATS: dict[TimePeriod, str] = {
    "hourly": "%Y-%m-%d-%H:%M",
    "daily": "%Y-%m-%d",
    "weekly": "%Y-%m-%d",
    "monthly": "%Y-%m-%d",
}
CRON: dict[TimePeriod, str] = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",
    "monthly": "0 0 1 * *",
}


@dataclass(frozen=True)
class TimeWindow:
    """One partition of an entity: rows with ``start <= column < end``, published as partition ``key``."""

    key: str
    column: str
    start: dt.datetime
    end: dt.datetime

    def describe(self) -> str:
        return f"partition {self.key} ({self.column} >= {self.start.isoformat()} and < {self.end.isoformat()})"


def window_for(config: TimePartitionsConfig, column: str, key: str, *, label: str) -> TimeWindow:
    """The window partition ``key`` stands for; a malformed, misaligned or too early key is a ``ConfigError``."""
    zone = ZoneInfo(config.timezone)
    fmt = KEY_FORMATS[config.period]
    try:
        start = dt.datetime.strptime(key, fmt).replace(tzinfo=zone)
    except ValueError:
        raise ConfigError(f"{label}: {key!r} is not a {config.period} partition key; write it as {_example(config)}") from None
    if start.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != start.replace(tzinfo=None):
        raise ConfigError(f"{label}: {key!r} does not exist in {config.timezone} (the clocks skip it)")
    if _floor(start, config.period) != start:
        raise ConfigError(f"{label}: {key!r} is not the start of a {config.period} period ({_alignment(config.period)})")
    first = config.start_at()
    if start < first:
        raise ConfigError(f"{label}: partition {key!r} is before time_partitions.start ({first.isoformat()})")
    return TimeWindow(key=key, column=column, start=start, end=_next(start, config.period))


def latest_key(config: TimePartitionsConfig, *, now: dt.datetime) -> str | None:
    """The last complete period's key at ``now`` (what a schedule loads); ``None`` before the first one has ended."""
    zone = ZoneInfo(config.timezone)
    current = _floor(now.astimezone(zone), config.period)
    previous = _previous(current, config.period)
    if previous < config.start_at():
        return None
    return previous.strftime(KEY_FORMATS[config.period])


def check_start(config: TimePartitionsConfig) -> None:
    """``start`` must open a period, so the first partition is whole (raises ``ValueError`` for the config model)."""
    first = config.start_at()
    if _floor(first, config.period) != first:
        raise ValueError(f"start {config.start} is not the start of a {config.period} period ({_alignment(config.period)})")


def _floor(moment: dt.datetime, period: TimePeriod) -> dt.datetime:
    zone = moment.tzinfo
    local = moment.replace(minute=0, second=0, microsecond=0)
    if period == "hourly":
        return local
    day = local.replace(hour=0)
    if period == "daily":
        return day
    if period == "weekly":
        return (day - dt.timedelta(days=day.weekday())).replace(tzinfo=zone)
    return day.replace(day=1)


def _next(start: dt.datetime, period: TimePeriod) -> dt.datetime:
    if period == "hourly":  # in absolute time, so an hour is an hour across a DST change
        return (start.astimezone(dt.UTC) + dt.timedelta(hours=1)).astimezone(start.tzinfo)
    if period == "daily":
        return _wall(start, days=1)
    if period == "weekly":
        return _wall(start, days=7)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def _previous(start: dt.datetime, period: TimePeriod) -> dt.datetime:
    if period == "hourly":
        return (start.astimezone(dt.UTC) - dt.timedelta(hours=1)).astimezone(start.tzinfo)
    if period == "daily":
        return _wall(start, days=-1)
    if period == "weekly":
        return _wall(start, days=-7)
    year, month = (start.year - 1, 12) if start.month == 1 else (start.year, start.month - 1)
    return start.replace(year=year, month=month)


def _wall(start: dt.datetime, *, days: int) -> dt.datetime:
    """Midnight ``days`` later on the wall clock (a day across a DST change is 23 or 25 hours)."""
    return (start.replace(tzinfo=None) + dt.timedelta(days=days)).replace(tzinfo=start.tzinfo)


def _example(config: TimePartitionsConfig) -> str:
    return repr(config.start_at().strftime(KEY_FORMATS[config.period]))


def _alignment(period: TimePeriod) -> str:
    return {
        "hourly": "on the hour",
        "daily": "midnight",
        "weekly": "a Monday at midnight",
        "monthly": "the 1st at midnight",
    }[period]
