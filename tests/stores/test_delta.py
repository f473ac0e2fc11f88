"""The Delta store on local disk, on S3 (moto server) and on Azure Blob (Azurite): every scenario on every lake.

Runs go through ``hygge_core.run_entity`` / ``run_project`` on a real Parquet
home; tables are read back with delta-rs and with Polars and compared exactly.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import hygge_core
from hygge_core import StoreError, TransientError

from .lakes import Lake
from .support import (
    SCHEMA,
    hygge_commits,
    make_table,
    option_env,
    paused_child,
    project_yaml,
    read_delta,
    read_polars,
    write_project,
    write_source,
)

pytest.importorskip("deltalake", reason="Delta tests NOT RUN: install the test extra (deltalake)")

ENTITY = "files/items"
HYGGE = str(Path(sys.executable).with_name("hygge"))


def setup(tmp_path: Path, lake: Lake, **kwargs) -> Path:
    return write_project(tmp_path / "project", project_yaml(lake, **kwargs))


def run(project: Path, **kwargs) -> hygge_core.EntityResult:
    return hygge_core.run_entity(hygge_core.load_project(project).entity(ENTITY), **kwargs)


def test_full_drop_twice_gives_two_versions_with_the_same_rows(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake)
    source = make_table(range(0, 700), "v1")
    write_source(project / "home" / "items" / "a.parquet", source)
    uri = lake.uri("items")

    first = run(project)
    second = hygge_core.run_project(hygge_core.load_project(project)).entities[0]
    assert first.published and second.status == "success" and second.rows == 700
    assert first.destination == uri

    assert read_delta(lake, uri).equals(source)
    assert read_polars(lake, uri).equals(source)
    assert read_delta(lake, uri, version=0).equals(source)  # the first version stays readable in the history
    commits = hygge_commits(lake, uri)
    assert [c["version"] for c in commits] == [1, 0]
    assert commits[0]["hygge"]["state"]["run_type"] == "full_drop"
    assert commits[0]["hygge"]["state"]["rows_last_run"] == 700

    # A third full drop with changed source data replaces the rows, in one more version.
    changed = make_table(range(100, 300), "v2")
    write_source(project / "home" / "items" / "a.parquet", changed)
    third = run(project)
    assert third.rows == 200
    assert read_delta(lake, uri).equals(changed)
    assert read_delta(lake, uri, version=1).equals(source)


def test_incremental_appends_each_file_once(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake, run_type="incremental")
    home = project / "home" / "items"
    a, b = make_table(range(0, 300), "a"), make_table(range(300, 550), "b")
    write_source(home / "a.parquet", a)
    uri = lake.uri("items")
    assert run(project).rows == 300
    write_source(home / "b.parquet", b)
    assert run(project).rows == 250
    nothing = run(project)
    assert nothing.status == "skipped" and not nothing.published

    expected = pa.concat_tables([a, b])
    assert read_delta(lake, uri).equals(expected)
    assert read_polars(lake, uri).equals(expected)
    commits = hygge_commits(lake, uri)
    assert [c["version"] for c in commits] == [1, 0]  # the empty run committed nothing
    assert sorted(commits[0]["hygge"]["state"]["home"]["loaded_files"]) == ["a.parquet", "b.parquet"]
    # The state read back for the next run is the one committed with the data.
    store = hygge_core.load_project(project).entity(ENTITY).create_store()
    assert sorted(store.read_state().home["loaded_files"]) == ["a.parquet", "b.parquet"]


def test_incremental_merge_replaces_updated_rows(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake, run_type="incremental", store={"merge_keys": ["id"]})
    home = project / "home" / "items"
    uri = lake.uri("items")
    write_source(home / "a.parquet", make_table(range(0, 200), "old"))
    assert run(project).rows == 200
    # Updates for 150..249 (100..199 updated twice in one run: the later file wins) and new rows 200..249.
    write_source(home / "b.parquet", make_table(range(100, 200), "first-update"))
    write_source(home / "c.parquet", make_table(range(150, 250), "new"))
    result = run(project)
    assert result.rows == 200

    expected = pa.concat_tables(
        [make_table(range(0, 100), "old"), make_table(range(100, 150), "first-update"), make_table(range(150, 250), "new")]
    )
    assert read_delta(lake, uri).equals(expected)
    assert read_polars(lake, uri).equals(expected)
    assert [c["version"] for c in hygge_commits(lake, uri)] == [1, 0]


def test_merge_key_defaults_to_the_watermark_key(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake, run_type="incremental", flow={"watermark": {"key": "id"}})
    home = project / "home" / "items"
    write_source(home / "a.parquet", make_table(range(0, 50), "old"))
    run(project)
    write_source(home / "b.parquet", make_table(range(25, 75), "new"))
    run(project)
    expected = pa.concat_tables([make_table(range(0, 25), "old"), make_table(range(25, 75), "new")])
    assert read_delta(lake, lake.uri("items")).equals(expected)


@pytest.mark.parametrize("merge", [False, True], ids=["append", "merge"])
def test_schema_change_fail_leaves_the_table_unchanged(tmp_path: Path, lake: Lake, env: dict, merge: bool) -> None:
    project = setup(tmp_path, lake, run_type="incremental", store={"merge_keys": ["id"]} if merge else None)
    home = project / "home" / "items"
    old = make_table(range(0, 100), "old")
    write_source(home / "a.parquet", old)
    run(project)
    write_source(home / "b.parquet", make_table(range(100, 150), "new", extra="note"))
    with pytest.raises(StoreError) as caught:
        run(project)
    message = str(caught.value)
    assert ENTITY in message and lake.uri("items") in message
    assert "added note (string)" in message and "schema_change: evolve" in message
    assert read_delta(lake, lake.uri("items")).equals(old)
    assert [c["version"] for c in hygge_commits(lake, lake.uri("items"))] == [0]


@pytest.mark.parametrize("merge", [False, True], ids=["append", "merge"])
def test_schema_change_evolve_adds_the_column(tmp_path: Path, lake: Lake, env: dict, merge: bool) -> None:
    store = {"merge_keys": ["id"]} if merge else None
    project = setup(tmp_path, lake, run_type="incremental", store=store, flow={"schema_change": "evolve"})
    home = project / "home" / "items"
    old = make_table(range(0, 100), "old")
    new = make_table(range(100, 150), "new", extra="note")
    write_source(home / "a.parquet", old)
    run(project)
    write_source(home / "b.parquet", new)
    assert run(project).rows == 50
    wide = new.schema
    expected = pa.concat_tables([old.append_column("note", pa.nulls(100, pa.string())), new])
    assert read_delta(lake, lake.uri("items"), schema=wide).equals(expected)
    assert read_polars(lake, lake.uri("items"), schema=wide).equals(expected)


def test_schema_change_evolve_refuses_a_retyped_column(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake, run_type="incremental", flow={"schema_change": "evolve"})
    home = project / "home" / "items"
    old = make_table(range(0, 100), "old")
    write_source(home / "a.parquet", old)
    run(project)
    retyped = make_table(range(100, 120), "new").set_column(1, "tag", pa.array(range(20), pa.int64()))
    write_source(home / "b.parquet", retyped)
    with pytest.raises(StoreError, match=r"retyped tag string -> long.*evolve only adds columns"):
        run(project)
    assert read_delta(lake, lake.uri("items")).equals(old)


def test_schema_change_full_drop_reloads_the_entity(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake, run_type="incremental", flow={"schema_change": "full_drop"})
    home = project / "home" / "items"
    old = make_table(range(0, 100), "old")
    new = make_table(range(100, 150), "new", extra="note")
    write_source(home / "a.parquet", old)
    run(project)
    write_source(home / "b.parquet", new)
    result = run(project)
    assert result.run_type == "full_drop" and result.rows == 150  # both files, read again in full
    expected = pa.concat_tables([old.append_column("note", pa.nulls(100, pa.string())), new])
    assert read_delta(lake, lake.uri("items"), schema=new.schema).equals(expected)
    state = hygge_commits(lake, lake.uri("items"))[0]["hygge"]["state"]
    assert state["run_type"] == "full_drop" and sorted(state["home"]["loaded_files"]) == ["a.parquet", "b.parquet"]
    # The next incremental run starts from the reloaded state: nothing new, nothing doubled.
    assert run(project).status == "skipped"


def test_wrong_credentials_name_the_store_and_print_no_secret(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    if lake.is_local:
        pytest.skip("local disk has no credentials (permissions are covered by tests/reliability)")
    for key, value in option_env(lake.wrong_options).items():
        monkeypatch.setenv(key, value)
    project = setup(tmp_path, lake, options=lake.wrong_options)
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 10), "a"))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(StoreError) as caught:
        run(project)
    message = str(caught.value)
    assert "access denied" in message and ENTITY in message and lake.uri("items") in message
    assert "storage_options" in message
    outcome = hygge_core.run_project(hygge_core.load_project(project)).entities[0]
    assert outcome.status == "failed" and "access denied" in (outcome.error or "")
    plan = hygge_core.load_project(project).entity(ENTITY)
    with pytest.raises(StoreError, match="access denied"):
        plan.create_store().check()

    captured = capfd.readouterr()
    everything = "\n".join(
        [message, outcome.error or "", caplog.text, captured.out, captured.err, repr(plan.store), str(plan.store.model_dump())]
    )
    for secret in lake.secrets:
        assert secret not in everything


def test_unreachable_endpoint_is_a_transient_error_naming_the_store(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    if lake.is_local:
        pytest.skip("local disk has no endpoint")
    for key, value in option_env(lake.unreachable_options).items():
        monkeypatch.setenv(key, value)
    project = setup(tmp_path, lake, options=lake.unreachable_options)
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 10), "a"))
    with pytest.raises(TransientError) as caught:
        run(project)
    message = str(caught.value)
    assert "cannot reach" in message and lake.uri("items") in message and ENTITY in message
    for secret in lake.secrets:
        assert secret not in message


KILL_DURING_STAGING = """
original = delta_store.DeltaWriter.write
calls = []
def write(self, data):
    original(self, data)
    calls.append(1)
    if len(calls) == 4:
        pause("KILL-POINT")
delta_store.DeltaWriter.write = write
"""

KILL_BEFORE_COMMIT = """
def stop(self, *args, **kwargs):
    pause("KILL-POINT")
delta_store.DeltaWriter._commit_staged = stop
delta_store.DeltaWriter._merge = stop
"""


@pytest.mark.parametrize("point", ["during_staging", "before_commit"])
@pytest.mark.parametrize("mode", ["full_drop", "incremental", "merge"])
def test_sigkill_leaves_the_previous_version_and_the_next_run_succeeds(
    tmp_path: Path, lake: Lake, env: dict, point: str, mode: str
) -> None:
    run_type = "full_drop" if mode == "full_drop" else "incremental"
    project = setup(tmp_path, lake, run_type=run_type, store={"merge_keys": ["id"]} if mode == "merge" else None)
    home = project / "home" / "items"
    old = make_table(range(0, 300), "old")
    write_source(home / "a.parquet", old)
    run(project)
    uri = lake.uri("items")
    new = make_table(range(200, 800) if mode == "merge" else range(300, 900), "new")  # merge: 200..299 are updates
    write_source(home / "b.parquet", new)

    child = paused_child(KILL_DURING_STAGING if point == "during_staging" else KILL_BEFORE_COMMIT, project, ENTITY, env)
    try:
        child.wait_for("KILL-POINT")
    finally:
        child.kill()

    assert read_delta(lake, uri).equals(old)
    assert read_polars(lake, uri).equals(old)
    assert [c["version"] for c in hygge_commits(lake, uri)] == [0]

    result = run(project)
    assert result.published
    if mode != "merge":
        expected = pa.concat_tables([old, new])
        assert result.rows == (900 if mode == "full_drop" else 600)  # incremental: b once, a not again
    else:
        expected = pa.concat_tables([make_table(range(0, 200), "old"), new])
    assert read_delta(lake, uri).equals(expected)
    assert [c["version"] for c in hygge_commits(lake, uri)] == [1, 0]


def test_store_check_writes_for_real_and_leaves_nothing(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake)
    store = hygge_core.load_project(project).entity(ENTITY).create_store()
    summary = "full drops and appends written by hygge's Parquet writer" if lake.is_local else "data files written by delta-rs"
    assert store.check().startswith(f"can write to {lake.uri('items')}; {summary}")
    assert store.table_version() is None  # the probe left no table behind


def test_publish_result_carries_the_version_and_uri(tmp_path: Path, lake: Lake, env: dict) -> None:
    project = setup(tmp_path, lake)
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 10), "a"))
    plan = hygge_core.load_project(project).entity(ENTITY)
    run(project)
    run(project)
    store = plan.create_store()
    assert store.table_version() == 1
    assert store.table_uri == lake.uri("items")
    assert SCHEMA.names == [name for name, _ in store.read_state().columns]


def test_a_concurrent_commit_makes_the_later_run_fail_as_transient(tmp_path: Path, lake: Lake, env: dict) -> None:
    """Two runs start from the same version; the first commits; the second must not append on a state it never saw."""
    project = setup(tmp_path, lake, run_type="incremental")
    home = project / "home" / "items"
    old = make_table(range(0, 100), "old")
    write_source(home / "a.parquet", old)
    run(project)
    write_source(home / "b.parquet", make_table(range(100, 200), "new"))
    plan = hygge_core.load_project(project).entity(ENTITY)
    store = plan.create_store()
    uri = lake.uri("items")

    with store.session() as late:
        late_writer = late.writer(run_id="20990101T000000000000Z-late00", run_type="incremental")
        late_writer.write(make_table(range(100, 200), "late"))
        first = run(project)  # a whole other run commits meanwhile
        assert first.rows == 100
        with pytest.raises(TransientError, match="another writer committed"):
            late_writer.commit(late.state.model_copy(update={"run_id": "late"}), schema=SCHEMA)
        late_writer.abort()

    expected = pa.concat_tables([old, make_table(range(100, 200), "new")])
    assert read_delta(lake, uri).equals(expected)
    assert [c["version"] for c in hygge_commits(lake, uri)] == [1, 0]
    assert run(project).status == "skipped"  # the state is the first run's: b is loaded, once


@pytest.mark.parametrize("lake", ["s3", "azure"], indirect=True)  # local disk: test_delta_local.py runs `hygge debug` too
def test_hygge_debug_writes_to_the_object_store_and_reports_each_failure(tmp_path: Path, lake: Lake) -> None:
    """``hygge debug`` makes a real request per table: it passes, then fails clearly on a wrong key and a dead endpoint."""
    uri = lake.uri("items")
    results = {}
    for case, options in (("good", lake.options), ("wrong", lake.wrong_options), ("unreachable", lake.unreachable_options)):
        project = write_project(tmp_path / case, project_yaml(lake, options=options))
        write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 10), "a"))
        env = {**os.environ, **option_env(options), "COLUMNS": "300"}
        done = subprocess.run([HYGGE, "debug"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
        results[case] = (done.returncode, " ".join(done.stdout.split()), done.stdout + done.stderr)

    assert results["good"][0] == 0, results["good"][2]
    assert f"✓ store: can write to {uri}" in results["good"][1]
    assert results["wrong"][0] == 1, results["wrong"][2]
    assert f"✗ store: {ENTITY}: access denied: cannot write a probe object to delta table {uri}" in results["wrong"][1]
    assert results["unreachable"][0] == 1, results["unreachable"][2]
    assert f"✗ store: {ENTITY}: cannot reach the object store of delta table {uri}" in results["unreachable"][1]
    for secret in lake.secrets:
        assert not [case for case, (_, _, output) in results.items() if secret in output]
    assert delta_table_missing(lake, uri)  # the probe left no table behind


def delta_table_missing(lake: Lake, uri: str) -> bool:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        DeltaTable(uri, storage_options=lake.options)
    except TableNotFoundError:
        return True
    return False
