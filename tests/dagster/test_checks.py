"""Asset checks run in the load's step, only when selected, and can be turned off per flow."""

from __future__ import annotations

from pathlib import Path

import fake_homes  # noqa: F401  (registers the test_memory home)
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterEventType, materialize

from hygge_core import load_project
from hygge_dagster import build_definitions, build_hygge_assets


def _checks(result):
    return {ev.check_name: ev for ev in result.get_asset_check_evaluations()}


def _files_project(write_project, tmp_path: Path, table: pa.Table, extra: str = "") -> Path:
    (tmp_path / "src" / "things").mkdir(parents=True)
    pq.write_table(table, tmp_path / "src" / "things" / "part.parquet")
    return write_project(
        f"""
        name: checks
        flows:
          f:
            home: {{type: parquet, path: {tmp_path / "src"}}}
            store: {{type: parquet, path: lake}}
            entities: [things]
        {extra}
        """
    )


def test_schema_drift_warns_when_columns_change(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, pa.table({"id": [1, 2], "name": ["a", "b"]}))
    job = build_definitions(root).resolve_implicit_global_asset_job_def()
    assert job.execute_in_process().success
    pq.write_table(
        pa.table({"id": [1, 2], "name": [1.5, 2.5], "extra": [True, False]}), tmp_path / "src" / "things" / "part.parquet"
    )
    second = job.execute_in_process()
    assert second.success  # WARN does not fail the step
    drift = _checks(second)["schema_drift"]
    assert not drift.passed and drift.severity.value == "WARN"
    assert drift.description == "schema changed since the previous load: added extra; changed name: string -> double"


def test_not_empty_warns_on_an_empty_full_drop(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, pa.table({"id": pa.array([], pa.int64())}))
    result = build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    empty = _checks(result)["not_empty"]
    assert not empty.passed
    assert "zero rows" in empty.description


def test_unique_key_finds_duplicates_and_nulls_in_published_files(write_project, tmp_path: Path) -> None:
    table = pa.table({"id": [1, 2, 2, None, 5], "v": ["a", "b", "c", "d", "e"]})
    root = _files_project(write_project, tmp_path, table, extra="    watermark: {key: id}")
    result = build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process()
    unique = _checks(result)["unique_key"]
    assert not unique.passed and unique.severity.value == "ERROR"
    assert unique.description == "key (id): 1 duplicate key row(s) and 1 row(s) with a null key"
    assert unique.metadata["duplicate_rows"].value == 1


def test_unique_key_passes_on_clean_keys(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, pa.table({"id": [3, 1, 2]}), extra="    watermark: {key: [id]}")
    result = build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process()
    assert _checks(result)["unique_key"].passed


def test_row_count_mismatch_is_a_blocking_error(write_project) -> None:
    root = write_project(
        """
        name: lies
        flows:
          f:
            home: {type: test_memory, rows: 300, claimed_source_rows: 301}
            store: {type: parquet, path: lake}
            entities: [t]
        """
    )
    result = build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process(raise_on_error=False)
    assert not result.success
    count = _checks(result)["row_count"]
    assert not count.passed
    assert count.description == "wrote 300 rows but the source reported 301 for the window"
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert "blocking asset check failed" in failures[0].event_specific_data.error.message


def test_flow_can_turn_checks_off(write_project, tmp_path: Path) -> None:
    root = _files_project(
        write_project, tmp_path, pa.table({"id": [1]}), extra="    checks: {row_count: false, schema_drift: false}"
    )
    (assets,) = build_hygge_assets(load_project(root))
    assert [spec.name for spec in assets.check_specs] == ["not_empty"]


def test_only_selected_checks_are_evaluated(sample_project: Path) -> None:
    assets = build_hygge_assets(load_project(sample_project))
    orders = AssetKey(["files_to_lake", "orders"])
    selection = AssetSelection.assets(orders).without_checks() | AssetSelection.checks(AssetCheckKey(orders, "not_empty"))
    result = materialize(assets, selection=selection)
    assert [(ev.asset_key, ev.check_name) for ev in result.get_asset_check_evaluations()] == [(orders, "not_empty")]
