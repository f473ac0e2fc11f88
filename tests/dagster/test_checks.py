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


def _checks_alone(root: Path, *check_keys: AssetCheckKey):
    """Run only the given checks, as the UI's "Execute" on a check does: no asset selected, nothing loaded."""
    return materialize(build_hygge_assets(load_project(root)), selection=AssetSelection.checks(*check_keys), raise_on_error=False)


def test_checks_alone_judge_the_published_version(write_project, tmp_path: Path) -> None:
    root = _files_project(
        write_project, tmp_path, pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), extra="    watermark: {key: id}"
    )
    things = AssetKey(["f", "things"])
    assert build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process().success
    names = ("row_count", "schema_drift", "not_empty", "unique_key")
    result = _checks_alone(root, *(AssetCheckKey(things, name) for name in names))
    assert result.success
    assert result.get_asset_materialization_events() == []  # nothing loaded
    checks = _checks(result)
    assert {name: checks[name].passed for name in names} == dict.fromkeys(names, True)
    assert checks["row_count"].metadata["rows_in_table"].value == 3
    assert checks["unique_key"].metadata["rows"].value == 3
    assert checks["schema_drift"].metadata["columns"].value == ["id: int64", "v: string"]


def test_a_check_alone_fails_when_the_lake_disagrees_with_its_commit_record(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, pa.table({"id": [1, 2, 3]}))
    assert build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process().success
    (data_file,) = (root / "lake" / "things").rglob("*.parquet")
    pq.write_table(pa.table({"id": [1], "extra": [True]}), data_file)  # a file replaced behind hygge's back
    result = _checks_alone(
        root, AssetCheckKey(AssetKey(["f", "things"]), "row_count"), AssetCheckKey(AssetKey(["f", "things"]), "schema_drift")
    )
    checks = _checks(result)
    assert not checks["row_count"].passed and checks["row_count"].severity.value == "ERROR"
    assert checks["row_count"].description == "the table holds 1 rows but the last run, a full drop, wrote 3"
    assert checks["schema_drift"].description == (
        "published data and its commit record disagree: the data has extra, which the commit record does not list"
    )


def test_checks_alone_before_any_load_have_nothing_to_judge(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, pa.table({"id": [1]}))
    result = _checks_alone(root, AssetCheckKey(AssetKey(["f", "things"]), "row_count"))
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.description == "nothing published yet: nothing to check"


def test_unique_key_alone_reads_the_key_columns(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, pa.table({"id": [1, 1, 2]}), extra="    watermark: {key: id}")
    build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process(raise_on_error=False)
    result = _checks_alone(root, AssetCheckKey(AssetKey(["f", "things"]), "unique_key"))
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.description == "key (id): 1 duplicate key row(s)"


def test_a_shared_step_judges_checks_alone_next_to_the_entities_it_loads(write_project, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / "src" / name).mkdir(parents=True)
        pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "src" / name / "part.parquet")
    root = write_project(
        f"""
        name: shared
        flows:
          f:
            home: {{type: parquet, path: {tmp_path / "src"}}}
            store: {{type: parquet, path: lake}}
            entities: [a, b]
            dagster: {{step: flow}}
        """
    )
    a, b = AssetKey(["f", "a"]), AssetKey(["f", "b"])
    assets = build_hygge_assets(load_project(root))
    assert materialize(assets, selection=AssetSelection.assets(a).without_checks()).success
    selection = AssetSelection.assets(b).without_checks() | AssetSelection.checks(AssetCheckKey(a, "row_count"))
    result = materialize(assets, selection=selection)
    assert [event.asset_key for event in result.get_asset_materialization_events()] == [b]
    (check,) = result.get_asset_check_evaluations()
    assert (check.asset_key, check.check_name, check.passed) == (a, "row_count", True)
    assert check.metadata["rows_in_table"].value == 2
