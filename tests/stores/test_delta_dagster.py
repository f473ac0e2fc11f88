"""The Delta store under Dagster, on local disk, S3 (moto) and Azure Blob (Azurite): kinds, and what a run records.

Every figure is compared with the table itself, read with delta-rs after the run:
``dagster/row_count`` with the rows its log holds, ``hygge/delta_version`` with its
version, ``dagster/uri`` with its address (no secret anywhere in the metadata).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from hygge_core.stores.delta_errors import public_uri
from hygge_dagster import build_definitions

from .lakes import Lake
from .support import delta_table, make_table, project_yaml, write_project, write_source

pytest.importorskip("deltalake", reason="Delta tests NOT RUN: install the test extra (deltalake)")

ITEMS = AssetKey(["files", "items"])
INCREMENTAL = {"hygge/run_type": "incremental"}
FULL_DROP = {"hygge/run_type": "full_drop"}


def log_rows(lake: Lake, uri: str) -> int:
    """The rows the table's log says its current version holds."""
    actions = pa.table(delta_table(lake, uri).get_add_actions(flatten=True))
    return sum(actions.column("num_records").to_pylist())


def expected_uri(lake: Lake, uri: str) -> str:
    return Path(uri).as_uri() if lake.is_local else uri


def test_kinds_and_metadata_follow_the_delta_log(tmp_path: Path, lake: Lake, env: dict) -> None:
    """Incremental append twice, nothing new, then a full drop: each run's metadata against the table."""
    project = write_project(tmp_path / "project", project_yaml(lake, run_type="incremental"))
    home = project / "home" / "items"
    uri = lake.uri("items")
    defs = build_definitions(project)
    (spec,) = defs.resolve_all_asset_specs()
    assert spec.kinds == {"parquet", "delta", "hygge"}
    job = defs.resolve_implicit_global_asset_job_def()

    def materialized(tags: dict[str, str]) -> dict:
        result = job.execute_in_process(instance=instance, tags=tags)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        checks = {ev.check_name: ev for ev in result.get_asset_check_evaluations()}
        count = checks["row_count"]
        assert count.passed, count.description
        metadata = {key: value.value for key, value in event.materialization.metadata.items()}
        # The check reconciles the rows read with what the table's log says this commit added and now holds.
        assert count.metadata["rows_written"].value == count.metadata["rows_published"].value == metadata["hygge/rows_loaded"]
        assert count.metadata["rows_in_table"].value == metadata["dagster/row_count"]
        return metadata

    with DagsterInstance.ephemeral() as instance:
        write_source(home / "a.parquet", make_table(range(0, 300), "a"))
        first = materialized(INCREMENTAL)
        assert (first["dagster/row_count"], first["hygge/rows_loaded"], first["hygge/delta_version"]) == (300, 300, 0)
        assert first["dagster/uri"] == expected_uri(lake, uri)

        write_source(home / "b.parquet", make_table(range(300, 600), "b"))
        second = materialized(INCREMENTAL)
        assert second["dagster/row_count"] == log_rows(lake, uri) == 600  # the table's total, from its log
        assert second["hygge/rows_loaded"] == 300  # this run's
        assert second["hygge/delta_version"] == delta_table(lake, uri).version() == 1

        nothing = job.execute_in_process(instance=instance, tags=INCREMENTAL)
        assert nothing.success and nothing.get_asset_materialization_events() == []
        (observation,) = [e for e in nothing.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION]
        metadata = observation.event_specific_data.asset_observation.metadata
        assert "dagster/row_count" not in metadata and "hygge/delta_version" not in metadata
        assert metadata["hygge/rows_loaded"].value == 0
        assert delta_table(lake, uri).version() == 1

        third = materialized(FULL_DROP)
        assert (third["dagster/row_count"], third["hygge/rows_loaded"], third["hygge/delta_version"]) == (600, 600, 2)
        assert log_rows(lake, uri) == 600

    shown = repr([first, second, third, metadata])
    assert not [secret for secret in lake.secrets if secret in shown]


@pytest.mark.parametrize("lake", ["local", "s3"], indirect=True)  # the merge itself runs on every lake in test_delta.py
def test_merge_reports_the_tables_rows_not_the_runs(tmp_path: Path, lake: Lake, env: dict) -> None:
    """A merge that updates 100 rows and adds 50: the table holds 250, the run loaded 150."""
    project = write_project(tmp_path / "project", project_yaml(lake, run_type="incremental", store={"merge_keys": ["id"]}))
    home = project / "home" / "items"
    uri = lake.uri("items")
    job = build_definitions(project).resolve_implicit_global_asset_job_def()
    with DagsterInstance.ephemeral() as instance:
        write_source(home / "a.parquet", make_table(range(0, 200), "old"))
        assert job.execute_in_process(instance=instance).success
        write_source(home / "b.parquet", make_table(range(100, 250), "new"))
        result = job.execute_in_process(instance=instance)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert metadata["dagster/row_count"].value == log_rows(lake, uri) == 250
        assert metadata["hygge/rows_loaded"].value == 150
        assert metadata["hygge/delta_version"].value == 1


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("s3://bucket/lake/items", "s3://bucket/lake/items"),
        ("abfss://lake@acct.dfs.core.windows.net/t/items", "abfss://lake@acct.dfs.core.windows.net/t/items"),
        ("https://key:s3cr3t@example.com/lake/items", "https://example.com/lake/items"),
        ("https://acct.blob.core.windows.net/lake/items?sv=2024&sig=s3cr3t", "https://acct.blob.core.windows.net/lake/items"),
        ("/data/lake/items", "/data/lake/items"),
    ],
)
def test_public_uri_drops_credentials_written_into_the_path(uri: str, shown: str) -> None:
    assert public_uri(uri) == shown


def test_credentials_written_into_a_table_path_never_show(tmp_path: Path) -> None:
    """A user may paste a URL with a password or a SAS signature as the path: it is used, but shown without them."""
    import hygge_core
    from hygge_core import HyggeError

    path = "https://loader:pw-Secret1@127.0.0.1:9/lake/items?sv=2024-01-01&sig=SigSecret9"
    lake = Lake("web", path)
    project = write_project(tmp_path / "p", project_yaml(lake, options={}, store={"path": path}))
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 5), "a"))
    plan = hygge_core.load_project(project).entity("files/items")
    store = plan.create_store()
    with pytest.raises(HyggeError) as caught:
        hygge_core.run_entity(plan)
    shown = [plan.store.describe(), store.destination, str(caught.value)]
    assert "https://127.0.0.1:9/lake/items" in shown[2]
    assert not [text for text in shown if "pw-Secret1" in text or "SigSecret9" in text], shown
