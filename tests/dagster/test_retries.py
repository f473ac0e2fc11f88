"""Retries are per entity: a transient failure re-runs only that entity, and it lands exactly once."""

from __future__ import annotations

from pathlib import Path

import fake_homes  # noqa: F401  (registers the test_memory home)
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterEventType, instance_for_test

from hygge_core import load_project
from hygge_dagster import materialize_entities


def test_transient_failure_is_retried_and_published_once(write_project, tmp_path: Path) -> None:
    marker = tmp_path / "b.failed-once"
    root = write_project(
        f"""
        name: flaky
        flows:
          f:
            home: {{type: test_memory, rows: 1000, batch_rows: 100}}
            store: {{type: parquet, path: lake}}
            entities:
              - a
              - name: b
                home: {{fail_once_marker: {marker}}}
              - c
            retries: {{max: 2, delay: 0s, jitter: false}}
        """
    )
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=1)
        assert report.success
        outcomes = {o.entity: o for o in report.entities}
        assert {name: (o.status, o.attempts, o.rows) for name, o in outcomes.items()} == {
            "a": ("success", 1, 1000),
            "b": ("success", 2, 1000),
            "c": ("success", 1, 1000),
        }
        for name in "abc":
            records = instance.fetch_materializations(AssetKey(["f", name]), limit=10).records
            assert len(records) == 1, name
        retried = [e for e in instance.all_logs(report.run_id) if e.dagster_event_type == DagsterEventType.STEP_UP_FOR_RETRY]
        assert [e.step_key for e in retried] == ["f__b"]
    assert marker.exists()
    table = pq.read_table(sorted((root / "lake" / "b").glob("*.parquet")))
    assert sorted(table.column("id").to_pylist()) == list(range(1000))  # one copy: no duplicates, nothing missing
    staging = root / "lake" / ".hygge-staging"
    assert not [p.name for p in staging.iterdir() if not p.name.endswith(".lock")]


@pytest.mark.parametrize("concurrency", [1, 2], ids=["in-process", "multiprocess"])
def test_an_unexpected_exception_fails_once_with_its_message(write_project, tmp_path: Path, concurrency: int) -> None:
    """Only hygge's TransientError is retried: a bug is not a dropped connection, whatever ``retries:`` allows."""
    root = write_project(
        """
        name: buggy
        flows:
          f:
            home: {type: test_memory, rows: 1000, batch_rows: 100}
            store: {type: parquet, path: lake}
            entities:
              - name: bug
                home: {fail_with: "list index out of range (test)"}
              - fine
            retries: {max: 2, delay: 0s, jitter: false}
        """
    )
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=concurrency)
        logs = instance.all_logs(report.run_id)
    bug, fine = report.entities
    assert (bug.status, bug.attempts, bug.error) == (
        "failed",
        1,
        "f/bug: unexpected RuntimeError: list index out of range (test)",
    )
    assert (fine.status, fine.attempts, fine.rows) == ("success", 1, 1000)
    assert not [entry for entry in logs if entry.dagster_event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert not (root / "lake" / "bug").exists()  # nothing published
    assert not [p.name for p in (root / "lake" / ".hygge-staging").iterdir() if not p.name.endswith(".lock")]


def test_configuration_errors_fail_once_and_alone(write_project, tmp_path: Path) -> None:
    (tmp_path / "src" / "good").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "src" / "good" / "p.parquet")
    root = write_project(
        f"""
        name: broken
        flows:
          f:
            home: {{type: parquet, path: {tmp_path / "src"}}}
            store: {{type: parquet, path: lake}}
            entities: [good, missing]
            retries: {{max: 3, delay: 0s}}
        """
    )
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=1)
    assert not report.success
    good, missing = report.entities
    assert (good.status, good.rows) == ("success", 3)
    assert missing.status == "failed" and missing.attempts == 1  # not retried
    assert (
        missing.error
        == f"f/missing: {tmp_path / 'src' / 'missing'} does not exist; check home.path (relative paths start at the project folder)"
    )
    assert [o.key for o in report.failed] == ["f/missing"]
