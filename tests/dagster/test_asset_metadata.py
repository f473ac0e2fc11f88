"""Definition-time metadata of entity assets: kinds, table name, URI, code references, columns and lineage.

What a catalog shows before a run and between runs, built from the plan and the entity's last
commit; checked against real projects on disk, run in process where a commit is needed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetKey, AssetSpec, CodeReferencesMetadataValue, TableColumnLineage, TableSchema

from hygge_core import load_project
from hygge_dagster import build_definitions, build_hygge_asset_specs


def _specs(root: Path) -> dict[AssetKey, AssetSpec]:
    return {spec.key: spec for spec in build_hygge_asset_specs(load_project(root))}


def _value(spec: AssetSpec, key: str) -> object:
    entry = spec.metadata[key]
    return entry.value if key != "dagster/code_references" else entry


def _files_project(write_project, tmp_path: Path, *, extra: str = "") -> Path:
    for entity in ("orders", "customers"):
        folder = tmp_path / "home" / entity
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), folder / "part-0.parquet")
    return write_project(
        f"""
        name: meta
        {extra}
        flows:
          files:
            home: {{type: parquet, path: ../home}}
            store: {{type: parquet, path: lake}}
            run_type: full_drop
            entities:
              - orders
              - name: customers
                run_type: full_drop
        """
    )


def test_kinds_table_name_and_uri_before_any_run(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path)
    spec = _specs(root)[AssetKey(["files", "orders"])]
    assert spec.kinds == {"parquet", "hygge"}
    assert _value(spec, "dagster/table_name") == "files.orders"
    assert _value(spec, "dagster/uri") == (root / "lake" / "orders").as_uri()
    assert "dagster/column_schema" not in spec.metadata  # nothing committed yet: no columns to show
    assert "dagster/column_lineage" not in spec.metadata


def test_code_references_point_at_each_entity_in_hygge_yml(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path)
    lines = (root / "hygge.yml").read_text().splitlines()
    for entity, text in (("orders", "- orders"), ("customers", "- name: customers")):
        reference = _value(_specs(root)[AssetKey(["files", entity])], "dagster/code_references")
        assert isinstance(reference, CodeReferencesMetadataValue)
        (local,) = reference.code_references
        assert local.file_path == str(root / "hygge.yml")
        assert lines[local.line_number - 1].strip() == text


def test_code_references_for_flow_and_entity_files(write_project, tmp_path: Path) -> None:
    root = write_project("name: folders\n")
    flow = root / "flows" / "sales"
    (flow / "entities").mkdir(parents=True)
    (flow / "flow.yml").write_text(
        textwrap.dedent(
            """
            home: {type: parquet, path: ../home}
            store: {type: parquet, path: lake}
            entities:
              - invoices
            """
        )
    )
    (flow / "entities" / "refunds.yml").write_text("run_type: full_drop\n")
    (discovering := root / "flows" / "found").mkdir(parents=True)
    (tmp_path / "home" / "a").mkdir(parents=True)
    (discovering / "flow.yml").write_text(
        "home: {type: parquet, path: ../home}\nstore: {type: parquet, path: lake2}\n\nentities: {include: ['*']}\n"
    )
    specs = _specs(root)

    def where(flow_name: str, entity: str) -> tuple[str, int | None]:
        (local,) = _value(specs[AssetKey([flow_name, entity])], "dagster/code_references").code_references
        return local.file_path, local.line_number

    assert where("sales", "invoices") == (str(flow / "flow.yml"), 5)  # its list item (line 1 is blank)
    assert where("sales", "refunds") == (str(flow / "entities" / "refunds.yml"), 1)
    assert where("found", "a") == (str(discovering / "flow.yml"), 4)  # discovered: the flow's entities: key


def test_parquet_homes_get_a_source_asset_keyed_by_their_folder(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, extra="dagster: {source_assets: true}")
    defs = build_definitions(root)
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    orders = specs[AssetKey(["files", "orders"])]
    # The home folder lies outside the project, so its key is the absolute folder, sanitised.
    source = AssetKey(["files", "_".join(("", *(tmp_path / "home" / "orders").parts[1:])).replace("-", "_")])
    assert [dep.asset_key for dep in orders.deps] == [source]
    assert source in specs
    assert _value(orders, "hygge/source_asset") == source.to_user_string()


def test_columns_and_lineage_come_from_the_last_commit(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path, extra="dagster: {source_assets: true}")
    key = AssetKey(["files", "orders"])
    result = build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process(asset_selection=[key])
    (materialization,) = result.get_asset_materialization_events()
    run_lineage = materialization.materialization.metadata["dagster/column_lineage"].value

    spec = _specs(root)[key]  # definitions built again, as a code location reloads after a run
    schema = _value(spec, "dagster/column_schema")
    assert isinstance(schema, TableSchema)
    assert [(column.name, column.type) for column in schema.columns] == [("id", "int64"), ("name", "string")]
    lineage = _value(spec, "dagster/column_lineage")
    assert isinstance(lineage, TableColumnLineage)
    source = spec.deps[0].asset_key
    assert {name: [(dep.asset_key, dep.column_name) for dep in deps] for name, deps in lineage.deps_by_column.items()} == {
        "id": [(source, "id")],
        "name": [(source, "name")],
    }
    assert run_lineage == lineage  # the materialisation says the same, for Dagster's column lineage view


def test_an_unreadable_commit_record_leaves_definitions_loading(write_project, tmp_path: Path) -> None:
    root = _files_project(write_project, tmp_path)
    key = AssetKey(["files", "orders"])
    build_definitions(root).resolve_implicit_global_asset_job_def().execute_in_process(asset_selection=[key])
    (state_file,) = (root / "lake" / "orders").rglob("state.json")
    state_file.write_text("{not json")
    spec = _specs(root)[key]
    assert "dagster/column_schema" not in spec.metadata
    assert _value(spec, "dagster/table_name") == "files.orders"
