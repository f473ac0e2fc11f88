"""One verdict wherever an entity runs: the engine computes the checks; the library, Dagster and the CLI report them.

The destination here loses a row of every batch after hygge wrote it (``test_lossy``),
so only a row count read back from the published files can notice.
"""

from __future__ import annotations

import json
from pathlib import Path

import fake_homes  # noqa: F401  (registers the test_memory home and the test_lossy store)
import pyarrow.parquet as pq
import pytest
from dagster import instance_for_test

import hygge_core
from hygge_cli.instance import open_instance
from hygge_cli.main import main as hygge_main
from hygge_dagster import materialize_entities

PROJECT = """
name: tampered
flows:
  f:
    home: {type: test_memory, rows: 300, batch_rows: 100}
    store: {type: test_lossy, path: lake}
    entities: [lossy]
  g:
    home: {type: test_memory, rows: 50}
    store: {type: parquet, path: lake}
    entities: [fine]
"""
MESSAGE = "check row_count failed: the destination holds 297 rows from this run but 300 were read (the data was published; fix the cause and run again)"


@pytest.fixture
def project_root(write_project) -> Path:
    return write_project(PROJECT)


def published_rows(root: Path, entity: str) -> int:
    return pq.read_table(root / "lake" / entity).num_rows


def test_run_project_fails_the_entity_whose_row_count_does_not_reconcile(project_root: Path) -> None:
    result = hygge_core.run_project(hygge_core.load_project(project_root))
    by_key = {entity.key: entity for entity in result.entities}
    lossy, fine = by_key["f/lossy"], by_key["g/fine"]
    assert (lossy.status, lossy.published, lossy.error, lossy.error_type) == ("failed", True, MESSAGE, "CheckFailed")
    row_count = next(check for check in lossy.checks if check.name == "row_count")
    assert (row_count.passed, row_count.severity, dict(row_count.metadata)) == (
        False,
        "ERROR",
        {"rows_written": 300, "source_rows": 300, "rows_published": 297, "rows_in_table": 297},
    )
    assert (fine.status, fine.error, [check.name for check in fine.checks if not check.passed]) == ("success", None, [])
    assert not result.ok and [entity.key for entity in result.failed] == ["f/lossy"]
    assert published_rows(project_root, "lossy") == 297 and published_rows(project_root, "fine") == 50


def test_dagster_gives_the_same_verdict(project_root: Path) -> None:
    project = hygge_core.load_project(project_root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=1)
    by_key = {outcome.key: outcome for outcome in report.entities}
    lossy, fine = by_key["f/lossy"], by_key["g/fine"]
    # Dagster fails the step on the failed blocking check; the reason is hygge's check message, not Dagster's.
    assert (lossy.ok, lossy.status, lossy.published, lossy.error, lossy.failure_text()) == (False, "failed", True, None, MESSAGE)
    assert [check.name for check in lossy.failing_checks] == ["row_count"]
    assert fine.ok and not report.ok


def test_hygge_start_gives_the_same_verdict(
    project_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process (``--concurrency 1`` runs Dagster's in-process executor), so the test-only types are registered."""
    monkeypatch.setenv("DAGSTER_HOME", str(project_root / ".dagster"))
    (project_root / ".dagster").mkdir()
    exit_code = hygge_main(["start", "-p", str(project_root), "--concurrency", "1", "--log-format", "json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finished = {event["entity"]: event for event in events if event["event"] == "entity_finished"}
    assert exit_code == 1
    assert (finished["f/lossy"]["ok"], finished["f/lossy"]["checks"]["row_count"]) == (False, False)
    assert finished["f/lossy"]["error"] == MESSAGE
    assert (finished["g/fine"]["ok"], finished["g/fine"]["error"]) == (True, None)
    summary = next(event for event in events if event["event"] == "run_finished")
    assert (summary["ok"], summary["failed"]) == (False, ["f/lossy"])
    instance = open_instance(project_root / ".dagster")
    assert [run.run_id for run in instance.get_runs()] == [summary["run_id"]]  # recorded on the project's instance
