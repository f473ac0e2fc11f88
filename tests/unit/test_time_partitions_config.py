"""time_partitions: each mistake is a config error naming the file and key; keys and windows follow Dagster's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hygge_core import ConfigError, load_project
from hygge_core.config import TimePartitionsConfig
from hygge_core.time_partitions import latest_key, window_for

PROJECT = """
name: shop
connections:
  pg: {type: postgres, server: localhost, database: shop}
flows:
  db:
    home: {type: postgres, connection: pg}
    store: {type: parquet, path: lake}
    entities: [orders]
    run_type: incremental
    watermark: {column: changed_at}
"""


def problems_of(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    return caught.value.problems


def test_each_mistake_names_the_flow_and_key(write_project):
    root = write_project(
        PROJECT.replace("    watermark: {column: changed_at}\n", "    run_type: full_drop\n").replace(
            "    run_type: incremental\n", ""
        )
        + "    time_partitions: {period: daily, start: 2024-01-01}\n"
        + "  files:\n    home: {type: parquet, path: data}\n    store: {type: parquet, path: lake2}\n    entities: [a]\n"
        + "    run_type: incremental\n    watermark: {column: at, key: id, lookback: 1h}\n"
        + "    time_partitions: {period: monthly, start: 2024-01-01}\n"
    )
    assert problems_of(root) == [
        "hygge.yml: flows.db.time_partitions: needs run_type: incremental (a partition run replaces its own period "
        "and keeps the others); this entity is full_drop",
        "hygge.yml: flows.db.time_partitions: name the date or timestamp column to cut periods on "
        "(time_partitions.column or watermark.column)",
        "hygge.yml: flows.files.time_partitions: home type 'parquet' cannot read a time window; "
        "time partitions are for SQL homes (mssql, postgres)",
        "hygge.yml: flows.files.time_partitions: watermark.lookback does not apply to partition runs "
        "(each reads its whole period); remove it",
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{period: monthly, start: 2024-01-15}", "start 2024-01-15 is not the start of a monthly period (the 1st at midnight)"),
        ("{period: weekly, start: 2024-01-02}", "start 2024-01-02 is not the start of a weekly period (a Monday at midnight)"),
        ("{period: daily, start: 2024-01-01, timezone: Mars/Base}", "unknown timezone 'Mars/Base'"),
        ("{period: fortnightly, start: 2024-01-01}", "Input should be 'hourly', 'daily', 'weekly' or 'monthly'"),
        ("{period: daily, start: '2024-01-01T00:00+02:00'}", "has a UTC offset; give local time and set timezone instead"),
    ],
)
def test_bad_blocks(write_project, block, message):
    root = write_project(PROJECT + f"    time_partitions: {block}\n")
    [problem] = problems_of(root)
    assert problem.startswith("hygge.yml: flows.db.time_partitions") and message in problem


def test_entity_override_and_column_default(write_project):
    root = write_project(
        PROJECT.replace(
            "entities: [orders]",
            "entities: [orders, {name: lines, time_partitions: {period: hourly, start: 2024-01-01, column: at}}]",
        )
        + "    time_partitions: {period: daily, start: 2024-01-01}\n"
    )
    project = load_project(root)
    orders, lines = project.entity("db/orders"), project.entity("db/lines")
    assert (orders.time_partitions.period, orders.time_partitions.column) == ("daily", "changed_at")
    assert (lines.time_partitions.period, lines.time_partitions.column) == ("hourly", "at")
    window = lines.for_partition("2024-03-31-01:00").time_window
    assert (window.start, window.end) == (dt.datetime(2024, 3, 31, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 31, 2, tzinfo=dt.UTC))
    with pytest.raises(ConfigError, match="'2024-03-31-01:30' is not the start of a hourly period"):
        lines.for_partition("2024-03-31-01:30")


def test_windows_and_latest_keys_by_period():
    zone = ZoneInfo("Europe/Copenhagen")
    weekly = TimePartitionsConfig(period="weekly", start="2024-01-01", timezone="Europe/Copenhagen")
    window = window_for(weekly, "at", "2024-03-25", label="x")  # the week DST starts: 167 hours
    assert (window.start, window.end) == (dt.datetime(2024, 3, 25, tzinfo=zone), dt.datetime(2024, 4, 1, tzinfo=zone))
    assert latest_key(weekly, now=dt.datetime(2024, 4, 3, tzinfo=dt.UTC)) == "2024-03-25"
    monthly = TimePartitionsConfig(period="monthly", start="2023-12-01")
    assert window_for(monthly, "at", "2023-12-01", label="x").end == dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC"))
    assert latest_key(monthly, now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) == "2023-12-01"
    assert latest_key(monthly, now=dt.datetime(2023, 12, 31, tzinfo=dt.UTC)) is None


def test_dry_run_shows_the_partitioning(write_project, capsys):
    from hygge_cli.start import print_plan

    root = write_project(PROJECT + "    time_partitions: {period: daily, start: 2024-01-01, timezone: Europe/Copenhagen}\n")
    project = load_project(root)
    print_plan(project, project.select(flows=[], entities=[]), run_type=None)
    assert (
        "db/orders  [incremental]\n      in daily partitions of changed_at from 2024-01-01 (Europe/Copenhagen); one per run\n"
        in (capsys.readouterr().out)
    )
