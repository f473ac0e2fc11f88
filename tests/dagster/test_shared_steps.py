"""Entities that share one Dagster step (``dagster: {step: flow}``) stay separate assets in every way that matters.

Each test runs a real Dagster run (multiprocess unless it says otherwise) on a real
instance and reads what the instance recorded: per-asset materialisations, check
evaluations, step keys, the failure and the re-execution from failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import fake_homes  # noqa: F401  (registers the test_memory home; step processes import it too)
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterEventType, ReexecutionOptions, build_reconstructable_job, execute_job, instance_for_test

from hygge_core import load_project
from hygge_dagster import materialize_entities
from hygge_dagster import run as hygge_run
from hygge_dagster.steps import AUTO_SHARED_MIN_ENTITIES, shared_step_threads, step_groups

pytestmark = pytest.mark.slow  # multiprocess runs start step processes

NAMES = ["a", "b", "c", "d", "e", "f"]


def flow_yaml(
    *, step: str = "flow", bad: str | None = None, extra: str = "", names: list[str] = NAMES, executor: str = "multiprocess"
) -> str:
    """One flow of test_memory entities; the executor is explicit, so a one-step run still uses processes."""
    entities = "\n".join(
        f"              - name: {name}\n                home: {{rows: {100 * (i + 1)}, fail_with: boom in {name}}}"
        if name == bad
        else f"              - name: {name}\n                home: {{rows: {100 * (i + 1)}}}"
        for i, name in enumerate(names)
    )
    return f"""
        name: shared
        concurrency: 4
        dagster: {{executor: {executor}}}
        flows:
          fl:
            home: {{type: test_memory, batch_rows: 50}}
            store: {{type: parquet, path: lake}}
            dagster: {{step: {step}}}
{extra}            entities:
{entities}
        """


def ids_in(root: Path, name: str) -> list[int]:
    return sorted(pq.read_table(sorted((root / "lake" / name).glob("*.parquet"))).column("id").to_pylist())


def test_every_entity_of_a_shared_step_has_its_own_materialisation_metadata_and_checks(write_project) -> None:
    root = write_project(flow_yaml())
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=4)
        assert report.success, [o.error for o in report.entities]
        logs = instance.all_logs(report.run_id)
        steps = {e.step_key for e in logs if e.dagster_event_type == DagsterEventType.STEP_START}
        assert steps == {"hygge_flow__fl"}, "one step should carry the whole flow"
        for i, name in enumerate(NAMES):
            records = instance.fetch_materializations(AssetKey(["fl", name]), limit=5).records
            assert len(records) == 1, name
            metadata = records[0].asset_materialization.metadata
            assert metadata["dagster/row_count"].value == 100 * (i + 1)
            checks = [
                e.dagster_event.event_specific_data
                for e in logs
                if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
                and e.dagster_event.event_specific_data.asset_key == AssetKey(["fl", name])
            ]
            assert sorted((check.check_name, check.passed) for check in checks) == [
                ("not_empty", True),
                ("row_count", True),
                ("schema_drift", True),
            ]
    outcomes = {o.entity: o for o in report.entities}
    assert {name: (o.status, o.rows, len(o.checks)) for name, o in outcomes.items()} == {
        name: ("success", 100 * (i + 1), 3) for i, name in enumerate(NAMES)
    }
    for i, name in enumerate(NAMES):
        assert ids_in(root, name) == list(range(100 * (i + 1)))


def test_a_failing_entity_fails_alone_and_re_execution_from_failure_runs_only_it(write_project) -> None:
    root = write_project(flow_yaml(bad="c"))
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=4)
        assert not report.success
        outcomes = {o.entity: o for o in report.entities}
        assert {name: o.status for name, o in outcomes.items()} == {
            name: "failed" if name == "c" else "success" for name in NAMES
        }
        assert outcomes["c"].error is not None and "boom in c" in outcomes["c"].error
        assert not (root / "lake" / "c").exists(), "a failed entity publishes nothing"
        failure = next(e for e in instance.all_logs(report.run_id) if e.dagster_event_type == DagsterEventType.STEP_FAILURE)
        description = failure.dagster_event.event_specific_data.user_failure_data.description
        assert description.startswith("1 of 6 entities failed:") and "fl/c: unexpected RuntimeError: boom in c" in description
        published = {name: ids_in(root, name) for name in NAMES if name != "c"}

        (root / "hygge.yml").write_text((root / "hygge.yml").read_text().replace(", fail_with: boom in c", ""))
        args = (str(project.config_file), None, 4, ("fake_homes",))
        job = build_reconstructable_job(hygge_run.__name__, hygge_run.reconstruct_job.__name__, reconstructable_args=args)
        options = ReexecutionOptions.from_failure(report.run_id, instance)
        with execute_job(job, instance=instance, reexecution_options=options, raise_on_error=False) as again:
            assert again.success
            rerun = again.run_id
        materialized = {
            e.dagster_event.asset_key.path[-1]
            for e in instance.all_logs(rerun)
            if e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
        }
        assert materialized == {"c"}, "re-execution from failure should load only the failed entity"
    assert ids_in(root, "c") == list(range(300))
    for name, ids in published.items():
        assert ids_in(root, name) == ids  # untouched by the re-execution


def test_transient_errors_are_retried_per_entity_inside_the_step(write_project, tmp_path: Path) -> None:
    marker = tmp_path / "b.failed-once"
    root = write_project(
        flow_yaml(extra="            retries: {max: 2, delay: 0s, jitter: false}\n").replace(
            "home: {rows: 200}", f"home: {{rows: 200, fail_once_marker: {marker}}}"
        )
    )
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=2)
        assert report.success, [o.error for o in report.entities]
        logs = instance.all_logs(report.run_id)
        assert not [e for e in logs if e.dagster_event_type == DagsterEventType.STEP_UP_FOR_RETRY], "the step is not retried"
        attempts = {
            e.dagster_event.asset_key.path[-1]: e.dagster_event.event_specific_data.materialization.metadata[
                "hygge/attempt"
            ].value
            for e in logs
            if e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
        }
    assert marker.exists()
    assert attempts == {name: 2 if name == "b" else 1 for name in NAMES}
    assert {o.entity: o.attempts for o in report.entities}["b"] == 2
    assert ids_in(root, "b") == list(range(200))  # once: the failed attempt left nothing behind


def test_a_shared_step_holds_one_pool_slot_per_running_entity(write_project, tmp_path: Path) -> None:
    """pool_size 1: entities of one connection never overlap, although the step could run two at once."""
    timeline = tmp_path / "timeline"
    timeline.mkdir()
    root = write_project(
        f"""
        name: pooled
        concurrency: 2
        dagster: {{executor: multiprocess}}
        connections:
          db: {{type: postgres, server: localhost, database: nothing, pool_size: 1}}
        flows:
          f:
            home: {{type: test_memory, connection: db, rows: 10, sleep: 0.5, timeline: {timeline}}}
            store: {{type: parquet, path: lake}}
            dagster: {{step: flow}}
            entities: [one, two, three]
        """
    )
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=2)
        assert report.success, [o.error for o in report.entities]
        lines = [e.user_message for e in instance.all_logs(report.run_id) if "thread(s)" in (e.user_message or "")]
        assert any("loading 3 entities on 2 thread(s)" in line for line in lines), lines
        assert instance.event_log_storage.get_concurrency_info("hygge_db").claimed_slots == []
    spans = sorted(
        (float((timeline / f"{n}.start").read_text()), float((timeline / f"{n}.end").read_text()))
        for n in ("one", "two", "three")
    )
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, f"entities of a pool_size 1 connection overlapped: {spans}"


def test_in_process_runs_share_steps_too(write_project) -> None:
    root = write_project(flow_yaml(step="auto"))
    project = load_project(root)
    assert [group.kind for group in step_groups(project)] == ["flow"]
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=1)
        assert report.success
        lines = [e.user_message for e in instance.all_logs(report.run_id) if "thread(s)" in (e.user_message or "")]
        assert any("on 1 thread(s)" in line for line in lines), lines
    assert [o.rows for o in report.entities] == [100 * (i + 1) for i in range(len(NAMES))]


def test_a_one_step_run_stays_in_process_unless_the_project_names_its_executor(write_project) -> None:
    """A run that is one shared step gains nothing from a forkserver and a step process: it runs in process."""
    engines = {}
    for executor in ("default", "multiprocess"):
        text = flow_yaml()
        text = text.replace("        dagster: {executor: multiprocess}\n", "") if executor == "default" else text
        project = load_project(write_project(text, folder=executor))  # jobs are cached per project file in a process
        with instance_for_test() as instance:
            report = materialize_entities(project, project.plans, instance=instance, max_concurrent=4)
            assert report.success
            engines[executor] = " ".join(
                e.message or "" for e in instance.all_logs(report.run_id) if e.dagster_event_type == DagsterEventType.ENGINE_EVENT
            )
    assert "Executing steps in process" in engines["default"] and "Multiprocess executor" not in engines["default"]
    assert "Multiprocess executor" in engines["multiprocess"]


def test_auto_gives_a_few_entities_a_step_each_and_many_one_shared_step(write_project) -> None:
    few = load_project(write_project(flow_yaml(step="auto", names=NAMES[: AUTO_SHARED_MIN_ENTITIES - 1])))
    assert [group.kind for group in step_groups(few)] == ["entity"] * (AUTO_SHARED_MIN_ENTITIES - 1)
    many = load_project(write_project(flow_yaml(step="auto")))
    assert len(many.plans) >= AUTO_SHARED_MIN_ENTITIES
    assert [(group.kind, len(group.plans)) for group in step_groups(many)] == [("flow", len(NAMES))]
    forced = load_project(write_project(flow_yaml(step="entity")))
    assert [group.kind for group in step_groups(forced)] == ["entity"] * len(NAMES)


@pytest.mark.parametrize(
    ("concurrency", "steps", "sequential", "threads"),
    [(4, 1, False, 4), (4, 2, False, 2), (4, 3, False, 1), (4, 9, False, 1), (8, 3, False, 2), (4, 5, True, 4), (1, 1, False, 1)],
)
def test_shared_steps_split_the_run_s_concurrency(concurrency: int, steps: int, sequential: bool, threads: int) -> None:
    assert shared_step_threads(concurrency, steps_in_run=steps, sequential=sequential) == threads
    if not sequential:
        assert threads * min(concurrency, steps) <= concurrency or threads == 1


def test_failed_entities_are_named_in_json_metadata(write_project) -> None:
    root = write_project(flow_yaml(bad="d"))
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=1)
        failure = next(e for e in instance.all_logs(report.run_id) if e.dagster_event_type == DagsterEventType.STEP_FAILURE)
        metadata = failure.dagster_event.event_specific_data.user_failure_data.metadata
    failed = metadata["hygge/failed_entities"].value
    assert list(failed) == ["fl/d"] and failed["fl/d"] == "unexpected RuntimeError: boom in d"
    assert json.dumps(failed)  # plain JSON, readable by any client


def test_two_shared_steps_never_load_more_entities_than_concurrency(write_project, tmp_path: Path) -> None:
    """concurrency: 2 over two shared steps in two processes: each gets one thread, so at most two entities overlap."""
    timeline = tmp_path / "timeline"
    timeline.mkdir()
    flows = "\n".join(
        f"""
          {flow}:
            home: {{type: test_memory, rows: 10, sleep: 0.4, timeline: {timeline}}}
            store: {{type: parquet, path: lake/{flow}}}
            dagster: {{step: flow}}
            entities: [{", ".join(f"{flow}_{i}" for i in range(3))}]"""
        for flow in ("left", "right")
    )
    root = write_project(
        f"""
        name: budget
        concurrency: 2
        dagster: {{executor: multiprocess}}
        flows:{flows}
        """
    )
    project = load_project(root)
    with instance_for_test() as instance:
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=2)
        assert report.success, [o.error for o in report.entities]
        steps = {e.step_key for e in instance.all_logs(report.run_id) if e.dagster_event_type == DagsterEventType.STEP_START}
    assert steps == {"hygge_flow__left", "hygge_flow__right"}
    stamps = []
    for name in [f"{flow}_{i}" for flow in ("left", "right") for i in range(3)]:
        stamps += [(float((timeline / f"{name}.start").read_text()), 1), (float((timeline / f"{name}.end").read_text()), -1)]
    running, most = 0, 0
    for _, change in sorted(stamps, key=lambda stamp: (stamp[0], stamp[1])):  # an end before a start at the same instant
        running += change
        most = max(most, running)
    assert most <= 2, f"{most} entities loaded at once with concurrency 2"
