"""materialize_entities: one multiprocess Dagster run on a real instance, outcomes read from its event log."""

from __future__ import annotations

from pathlib import Path

import fake_homes  # noqa: F401  (registers the test_memory home; step processes import it too)
import pyarrow.parquet as pq
import pytest
from dagster import instance_for_test

from hygge_core import load_project
from hygge_dagster import materialize_entities

pytestmark = pytest.mark.slow  # each multiprocess run starts step processes (a few seconds)


def test_multiprocess_run_reports_each_entity(sample_project: Path) -> None:
    project = load_project(sample_project)
    plans = project.select(entities=["files_to_lake/orders", "files_to_lake/products"])
    with instance_for_test() as instance:
        report = materialize_entities(
            project, plans, instance=instance, max_concurrent=2, run_type="full_drop", tags={"team": "data"}
        )
        run = instance.get_run_by_id(report.run_id)
        assert run is not None and run.tags["hygge/run_type"] == "full_drop" and run.tags["team"] == "data"
        engine = [e.message for e in instance.all_logs(report.run_id) if "multiprocess executor" in (e.message or "")]
        assert engine, "the run should use the multiprocess executor"
    assert report.success
    lake = sample_project.parent.parent / "lake" / "sample"
    for outcome in report.entities:
        table = pq.read_table(sorted((lake / outcome.entity).glob("*.parquet")))
        assert outcome.status == "success"
        assert outcome.rows == table.num_rows > 0
        assert outcome.destination == str(lake / outcome.entity)
        assert outcome.run_type == "full_drop"
        assert outcome.rows_per_second == pytest.approx(outcome.rows / outcome.seconds, rel=0.01)
        assert {check.name for check in outcome.checks} == {"row_count", "schema_drift", "not_empty"}
        assert all(check.passed for check in outcome.checks)
    assert not (lake / "customers").exists()


def test_pool_size_one_never_overlaps_entities_of_a_connection(write_project, tmp_path: Path) -> None:
    timeline = tmp_path / "timeline"
    timeline.mkdir()
    root = write_project(
        f"""
        name: pooled
        concurrency: 2
        connections:
          db: {{type: postgres, server: localhost, database: nothing, pool_size: 1}}
        flows:
          f:
            home: {{type: test_memory, connection: db, rows: 10, sleep: 1.5, timeline: {timeline}}}
            store: {{type: parquet, path: lake}}
            entities: [one, two]
        """
    )
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=2)
        assert instance.event_log_storage.get_concurrency_info("hygge_db").slot_count == 1
    assert report.success, [o.error for o in report.entities]
    spans = sorted(
        (float((timeline / f"{n}.start").read_text()), float((timeline / f"{n}.end").read_text())) for n in ("one", "two")
    )
    (first_start, first_end), (second_start, second_end) = spans
    assert first_end <= second_start, f"entities overlapped: {spans}"
