"""Time partitions through Dagster: assets carry time-window partitions, a step loads the partition of its run.

In process: a shared step (two entities) and an entity step load one partition each, with metadata and checks.
Through a real `hygge dev` (webserver and daemon): a backfill of two partitions launched over GraphQL.
"""

from __future__ import annotations

import datetime as dt
import time

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, TimeWindowPartitionsDefinition

import hygge_core
from hygge_cli.instance import open_instance
from hygge_core.config import TimePartitionsConfig
from hygge_core.errors import ConfigError
from hygge_core.time_partitions import window_for
from hygge_dagster import build_definitions
from hygge_dagster import constants as c
from hygge_dagster.partitions import partitions_def

EVENTS = """
create table events (id int primary key, at timestamp not null, label text);
insert into events select g, timestamp '2024-01-01' + (g - 1) * interval '6 hours', 'v' || g from generate_series(1, 12) g;
"""

FLOWS = """
flows:
  db:
    home: {type: postgres, connection: pg, table: events}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [events, copy]
    run_type: incremental
    watermark: {column: at}
    time_partitions: {period: daily, start: 2024-01-01}
    dagster: {step: flow}
  solo:
    home: {type: postgres, connection: pg, table: events}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [solo]
    run_type: incremental
    watermark: {column: at}
    time_partitions: {period: daily, start: 2024-01-01}
    dagster: {step: entity}
  whole:
    home: {type: postgres, connection: pg, table: events}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [whole]
"""


def ids(root, entity: str) -> list[int]:
    return sorted(row["id"] for row in pq.read_table(root / "lake" / entity).to_pylist())


def test_a_partitioned_run_loads_its_window_in_shared_and_entity_steps(pgdb, pg_project, tmp_path):
    pgdb.sql(EVENTS)
    root = pg_project(FLOWS, pool_size=2)
    defs = build_definitions(root)
    job = defs.resolve_job_def(c.RUN_JOB_NAME)
    spec = next(spec for spec in defs.resolve_all_asset_specs() if spec.key == AssetKey(["db", "events"]))
    assert spec.metadata[c.META_TIME_PARTITIONS] == "daily on at (UTC) from 2024-01-01"
    assert job.partitions_def == partitions_def(hygge_core.load_project(root).entity("db/events").time_partitions)
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster")) as instance:
        for key in ("2024-01-02", "2024-01-01"):
            assert job.execute_in_process(instance=instance, partition_key=key).success
        events = instance.get_latest_materialization_event(AssetKey(["db", "events"]))
        checks = instance.event_log_storage.get_asset_check_execution_history(
            check_key=next(iter(defs.resolve_asset_graph().get_check_keys_for_assets({AssetKey(["db", "events"])}))),
            limit=5,
        )
    assert ids(root, "events") == ids(root, "copy") == ids(root, "solo") == [1, 2, 3, 4, 5, 6, 7, 8]
    assert ids(root, "whole") == list(range(1, 13))  # the unpartitioned entity of the same run loads whole
    materialization = events.asset_materialization
    assert materialization.partition == "2024-01-01"
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata[c.META_PARTITION] == (
        "partition 2024-01-01 (at >= 2024-01-01T00:00:00+00:00 and < 2024-01-02T00:00:00+00:00)"
    )
    assert (metadata[c.META_ROWS_LOADED], metadata[c.META_SOURCE_ROWS], metadata[c.META_ROW_COUNT]) == (4, 4, 8)
    assert all(record.status.value == "SUCCEEDED" for record in checks) and len(checks) == 2


@pytest.mark.parametrize(
    ("period", "keys"),
    [
        ("hourly", ["2024-03-31-00:00", "2024-03-31-01:00", "2024-03-31-03:00"]),  # 02:00 does not exist that day
        ("daily", ["2024-03-30", "2024-03-31", "2024-10-27"]),
        ("weekly", ["2024-03-25", "2024-10-21"]),
        ("monthly", ["2024-03-01", "2024-10-01"]),
    ],
)
def test_dagster_and_the_engine_agree_on_keys_and_windows(period, keys):
    """Across the daylight-saving changes of Europe/Copenhagen, each key Dagster offers is the window hygge reads."""
    config = TimePartitionsConfig(period=period, start="2024-01-01", timezone="Europe/Copenhagen")
    definition = partitions_def(config)
    assert isinstance(definition, TimeWindowPartitionsDefinition)
    offered = definition.get_partition_keys(current_time=dt.datetime(2024, 12, 1, tzinfo=dt.UTC))
    for key in keys:
        assert key in offered
        theirs = definition.time_window_for_partition_key(key)
        ours = window_for(config, "at", key, label="x")
        assert (theirs.start.timestamp(), theirs.end.timestamp()) == (ours.start.timestamp(), ours.end.timestamp()), key
    if period == "hourly":
        assert "2024-03-31-02:00" not in offered
        with pytest.raises(ConfigError, match="'2024-03-31-02:00' does not exist in Europe/Copenhagen"):
            window_for(config, "at", "2024-03-31-02:00", label="x")


LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status runs(limit: 10) { status tags { key value } } } }
}
"""

MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(limit: 10) {
        partition
        metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } }
      }
    }
  }
}
"""


def _graphql(port: int, query: str, variables: dict) -> dict:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


@pytest.mark.slow
def test_a_backfill_of_two_partitions_through_hygge_dev(pgdb, pg_project):
    """`hygge dev` (webserver and daemon) on the project's instance; the backfill's runs load one partition each."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from test_cli_dagster import dev_server  # the suite's `hygge dev` process, stopped like Ctrl-C

    pgdb.sql(EVENTS)
    # Each run's step in its run process: the daemon's 30-second tick is the test's floor, not step processes.
    root = pg_project("dagster: {executor: in_process}\n" + FLOWS.split("  solo:")[0], pool_size=2)
    config = root / "hygge.yml"
    config.write_text(config.read_text().replace('"${HYGGE_TEST_PG_PASSWORD}"', '"' + pgdb.password + '"'))
    with dev_server(root) as server:
        server.wait_until_loaded()
        params = {
            "partitionNames": ["2024-01-01", "2024-01-03"],
            "assetSelection": [{"path": ["db", "events"]}],
            "fromFailure": False,
        }
        launched = _graphql(server.port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        # The backfill daemon submits the runs on its next tick; it marks the backfill complete a tick (30 s) after
        # they end, so the test waits for the runs themselves. Bounded by Dagster: each run ends.
        while True:
            backfill = _graphql(server.port, BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]
            ended = [run for run in backfill["runs"] if run["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            if len(ended) == 2 or backfill["status"] not in ("REQUESTED", "COMPLETED"):
                break
            time.sleep(1)
        key = {"path": ["db", "events"]}
        events = _graphql(server.port, MATERIALIZATIONS, {"key": key})["assetOrError"]["assetMaterializations"]
    runs = {next(t["value"] for t in run["tags"] if t["key"] == "dagster/partition"): run["status"] for run in backfill["runs"]}
    assert runs == {"2024-01-01": "SUCCESS", "2024-01-03": "SUCCESS"}, backfill["status"]
    by_partition = {
        event["partition"]: {e["label"]: e.get("intValue", e.get("text")) for e in event["metadataEntries"]} for event in events
    }
    assert sorted(by_partition) == ["2024-01-01", "2024-01-03"]
    for partition, metadata in by_partition.items():
        assert metadata["hygge/rows_loaded"] == 4 and metadata["hygge/source_rows"] == 4
        assert metadata["hygge/partition"].startswith(f"partition {partition} (at >= {partition}T00:00:00+00:00")
    assert ids(root, "events") == [1, 2, 3, 4, 9, 10, 11, 12]  # the two days, each once; 2024-01-02 never loaded
    assert not (root / "lake" / "copy").exists()  # not selected: the backfill ran its asset only


def test_hygge_start_loads_the_named_partition_or_the_latest(pgdb, pg_project):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from hygge_dagster.partitions import run_partition

    pgdb.sql(EVENTS)
    root = pg_project(FLOWS, pool_size=2)
    hygge = str(Path(sys.executable).with_name("hygge"))
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}

    def start(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([hygge, "start", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)

    done = start("--entity", "db/events", "--partition", "2024-01-02")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ids(root, "events") == [5, 6, 7, 8]
    # Without --partition: the latest complete day (long after the rows, so empty), and the unpartitioned entity whole.
    before = dt.datetime.now(dt.UTC)
    done = start("--entity", "solo/solo", "--entity", "whole/whole")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (ids(root, "solo"), ids(root, "whole")) == ([], list(range(1, 13)))
    latest = {(moment - dt.timedelta(days=1)).strftime("%Y-%m-%d") for moment in (before, dt.datetime.now(dt.UTC))}
    with open_instance(root / ".dagster") as instance:
        solo = instance.get_latest_materialization_event(AssetKey(["solo", "solo"])).asset_materialization
        events = instance.get_latest_materialization_event(AssetKey(["db", "events"])).asset_materialization
    assert solo.partition in latest and events.partition == "2024-01-02"
    refused = start("--flow", "db", "--flow", "whole", "--partition", "2024-01-02")
    assert refused.returncode != 0
    assert "--partition 2024-01-02: whole/whole have no time_partitions; select partitioned entities only" in refused.stderr

    project = hygge_core.load_project(root)
    now = dt.datetime(2024, 1, 3, 5, tzinfo=dt.UTC)
    assert run_partition(project, project.entities("db"), None, now=now) == "2024-01-02"  # the latest complete day
    assert run_partition(project, project.entities("whole"), None, now=now) is None
    with pytest.raises(ConfigError, match=r"db/events: '2024-01-02T00' is not a daily partition key"):
        run_partition(project, project.entities("db"), "2024-01-02T00")
