"""Schedules and file sensors, evaluated the way the Dagster daemon evaluates them."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetKey, build_schedule_context, build_sensor_context, instance_for_test

from hygge_dagster import build_definitions

SCHEDULED = """
name: timed
flows:
  nightly:
    home: {{type: parquet, path: {src}}}
    store: {{type: parquet, path: lake}}
    entities: [a, b]
    schedule: {{cron: "0 2 * * *", timezone: Europe/Copenhagen}}
    freshness: {{max_lag: 26h, warn_lag: 24h}}
  adhoc:
    home: {{type: parquet, path: {src}}}
    store: {{type: parquet, path: lake2}}
    entities: [a]
"""


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for name in ("a", "b"):
        (src / name).mkdir(parents=True)
        pq.write_table(pa.table({"x": [1]}), src / name / "1.parquet")
    return src


def test_flow_schedule_targets_the_flow_group(write_project, tmp_path: Path) -> None:
    defs = build_definitions(write_project(SCHEDULED.format(src=_source(tmp_path))))
    assert [s.name for s in defs.schedules] == ["nightly_schedule"]  # flows without schedule: get none
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "Europe/Copenhagen")
    context = build_schedule_context(scheduled_execution_time=datetime(2026, 1, 2, 2, 0, tzinfo=UTC))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.asset_selection is None  # the whole target: the flow's group
    job = defs.resolve_job_def(schedule.job_name)
    assert job.asset_layer.selected_asset_keys == {AssetKey(["nightly", "a"]), AssetKey(["nightly", "b"])}


def test_freshness_policy_comes_from_the_flow(write_project, tmp_path: Path) -> None:
    defs = build_definitions(write_project(SCHEDULED.format(src=_source(tmp_path))))
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    policy = specs[AssetKey(["nightly", "a"])].freshness_policy
    assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 26 * 3600
    assert specs[AssetKey(["adhoc", "a"])].freshness_policy is None


def test_sensor_requests_only_entities_whose_files_changed(write_project, tmp_path: Path) -> None:
    src = _source(tmp_path)
    defs = build_definitions(write_project(SCHEDULED.format(src=src)))
    sensor = next(s for s in defs.sensors if s.name == "nightly_files_sensor")
    with instance_for_test() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
        assert [sorted(r.asset_selection) for r in first.run_requests] == [
            [AssetKey(["nightly", "a"]), AssetKey(["nightly", "b"])]
        ]
        cursor = first.cursor
        assert set(json.loads(cursor)) == {"a", "b"}

        unchanged = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        assert unchanged.run_requests == []

        pq.write_table(pa.table({"x": [2, 3]}), src / "b" / "2.parquet")
        changed = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        assert [r.asset_selection for r in changed.run_requests] == [[AssetKey(["nightly", "b"])]]
        assert changed.run_requests[0].run_key != first.run_requests[0].run_key

        shutil.rmtree(src / "a")  # a vanished folder is not a change to load
        os.utime(src / "b" / "2.parquet")
        gone = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=changed.cursor, definitions=defs))
        assert [r.asset_selection for r in gone.run_requests] == [[AssetKey(["nightly", "b"])]]
