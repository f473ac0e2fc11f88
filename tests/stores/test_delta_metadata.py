"""A local Delta table's definition-time metadata and its checks run alone, read from the table itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey

import hygge_core
from hygge_core.checks import evaluate_published
from hygge_dagster import build_hygge_asset_specs

from .lakes import Lake
from .support import make_table, project_yaml, write_project, write_source

pytest.importorskip("deltalake", reason="Delta tests NOT RUN: install the test extra (deltalake)")


def test_checks_alone_and_definition_metadata_read_the_local_table(tmp_path: Path) -> None:
    lake = Lake(name="local", root=str(tmp_path / "lake"))
    root = write_project(tmp_path / "project", project_yaml(lake, run_type="incremental", flow={"watermark": {"key": "id"}}))
    home = root / "home" / "items"
    write_source(home / "a.parquet", make_table(range(0, 300), "a"))
    plan = hygge_core.load_project(root).entity("files/items")
    assert hygge_core.run_entity(plan).published
    write_source(home / "b.parquet", make_table(range(300, 500), "b"))
    assert hygge_core.run_entity(plan).published  # an append: the table holds 500, the last run added 200

    checks = {check.name: check for check in evaluate_published(plan)}
    assert {name: check.passed for name, check in checks.items()} == {"row_count": True, "schema_drift": True, "unique_key": True}
    assert checks["row_count"].metadata["rows_in_table"] == 500
    assert checks["row_count"].metadata["rows_last_run"] == 200
    assert checks["unique_key"].metadata["rows"] == 500

    (spec,) = build_hygge_asset_specs(hygge_core.load_project(root))
    assert spec.key == AssetKey(["files", "items"])
    assert spec.kinds == {"parquet", "delta", "hygge"}
    assert spec.metadata["dagster/uri"].value == (tmp_path / "lake" / "items").as_uri()
    assert spec.metadata["dagster/table_name"].value == "files.items"
    schema = spec.metadata["dagster/column_schema"].value
    assert [column.name for column in schema.columns] == ["id", "tag", "amount", "at", "payload"]
