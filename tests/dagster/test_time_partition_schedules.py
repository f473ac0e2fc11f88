"""A partitioned flow's schedule loads the latest complete partition on each tick; an overriding entity gets its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dagster import build_schedule_context

from hygge_core import load_project
from hygge_dagster import build_definitions, build_hygge_asset_specs

PROJECT = """
name: sched
connections:
  pg: {type: postgres, server: localhost, database: shop}
flows:
  db:
    home: {type: postgres, connection: pg}
    store: {type: parquet, path: lake}
    entities: [orders, {name: lines, time_partitions: {period: hourly, start: 2024-01-01, column: at}}]
    run_type: incremental
    watermark: {column: changed_at}
    time_partitions: {period: daily, start: 2024-01-01, timezone: Europe/Copenhagen}
    schedule: {cron: "15 1 * * *", timezone: Europe/Copenhagen}
"""


def test_each_tick_requests_the_latest_complete_partition(write_project) -> None:
    root: Path = write_project(PROJECT)
    defs = build_definitions(root)
    repository = defs.get_repository_def()
    assert sorted(s.name for s in defs.schedules) == ["db_schedule", "db_schedule_2"]
    daily, hourly = defs.resolve_schedule_def("db_schedule"), defs.resolve_schedule_def("db_schedule_2")
    assert (daily.cron_schedule, daily.execution_timezone) == ("15 1 * * *", "Europe/Copenhagen")
    tick = datetime(2024, 3, 5, 0, 15, tzinfo=UTC)  # 01:15 in Copenhagen: 4 March is the last whole day there
    (request,) = daily.evaluate_tick(
        build_schedule_context(repository_def=repository, scheduled_execution_time=tick)
    ).run_requests
    assert request.partition_key == "2024-03-04"
    (request,) = hourly.evaluate_tick(
        build_schedule_context(repository_def=repository, scheduled_execution_time=tick)
    ).run_requests
    assert request.partition_key == "2024-03-04-23:00"
    early = daily.evaluate_tick(
        build_schedule_context(repository_def=repository, scheduled_execution_time=datetime(2023, 12, 31, 23, 30, tzinfo=UTC))
    )
    assert early.run_requests == [] and isinstance(early.skip_message, str)
    assert "no daily partition has ended yet (time_partitions.start is 2024-01-01)" in early.skip_message
    assert defs.resolve_job_def(daily.job_name).partitions_def is not None


def test_specs_carry_each_entitys_partitions_as_its_asset_does(write_project) -> None:
    """``build_hygge_asset_specs`` (assets executed elsewhere) partitions each spec like the asset hygge builds."""
    root: Path = write_project(PROJECT)
    specs = {spec.key.path[-1]: spec for spec in build_hygge_asset_specs(load_project(root))}
    assert specs["orders"].partitions_def is not None and specs["lines"].partitions_def is not None
    orders, lines = specs["orders"].partitions_def, specs["lines"].partitions_def
    assert (orders.fmt, orders.timezone, orders.start.date().isoformat()) == ("%Y-%m-%d", "Europe/Copenhagen", "2024-01-01")
    assert lines.fmt == "%Y-%m-%d-%H:%M"  # the entity's own hourly partitioning overrides the flow's
    assets = build_definitions(root).resolve_asset_graph()
    for name, spec in specs.items():
        assert assets.get(spec.key).partitions_def == spec.partitions_def, name
