"""The sample project's assets, run in process: specs, metadata against the files on disk, checks, subsets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, TableSchema

from hygge_core import load_project
from hygge_dagster import build_definitions, build_hygge_asset_specs
from hygge_dagster.outcomes import EntityStep, RunEventReader

ENTITIES = ["customers", "orders", "products"]


def key(entity: str) -> AssetKey:
    return AssetKey(["files_to_lake", entity])


def lake(sample_project: Path, entity: str) -> Path:
    return sample_project.parent.parent / "lake" / "sample" / entity


def source_rows(sample_project: Path, entity: str) -> int:
    folder = sample_project.parent.parent / "data" / "home" / entity
    return sum(pq.ParquetFile(path).metadata.num_rows for path in folder.glob("*.parquet"))


def test_specs_describe_each_entity(sample_project: Path) -> None:
    specs = {spec.key: spec for spec in build_hygge_asset_specs(load_project(sample_project))}
    assert set(specs) == {key(name) for name in ENTITIES}
    orders = specs[key("orders")]
    assert orders.group_name == "files_to_lake"
    assert orders.kinds == {"parquet", "hygge"}
    assert orders.tags["hygge/flow"] == "files_to_lake"
    assert orders.metadata["hygge/entity"] == "orders"
    assert orders.metadata["hygge/destination"] == str(lake(sample_project, "orders"))
    assert orders.metadata["hygge/source"].endswith(str(Path("data") / "home" / "orders"))
    assert "Sample shop data" in orders.description and str(lake(sample_project, "orders")) in orders.description


def test_names_are_sanitised_and_raw_names_kept(write_project, tmp_path: Path) -> None:
    home = tmp_path / "src" / "Kunde Æ"
    home.mkdir(parents=True)
    root = write_project(
        f"""
        name: odd
        flows:
          my-flow:
            home: {{type: parquet, path: {home.parent}}}
            store: {{type: parquet, path: out}}
            entities: ["Kunde Æ"]
        """
    )
    (spec,) = build_hygge_asset_specs(load_project(root))
    assert spec.key == AssetKey(["my_flow", "Kunde__"])
    assert spec.group_name == "my_flow"
    assert spec.metadata["hygge/flow"] == "my-flow"
    assert spec.metadata["hygge/entity"] == "Kunde Æ"


def test_sample_run_metadata_matches_files_on_disk(sample_project: Path) -> None:
    job = build_definitions(sample_project).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process()
    assert result.success
    events = {event.asset_key: event.materialization.metadata for event in result.get_asset_materialization_events()}
    assert set(events) == {key(name) for name in ENTITIES}
    for name in ENTITIES:
        metadata = events[key(name)]
        folder = lake(sample_project, name)
        files = sorted(folder.glob("*.parquet"))
        table = pq.read_table(files)
        assert metadata["dagster/row_count"].value == table.num_rows == source_rows(sample_project, name)
        assert metadata["hygge/rows_loaded"].value == table.num_rows
        assert metadata["dagster/uri"].value == folder.as_uri()
        assert metadata["hygge/source_rows"].value == table.num_rows
        assert metadata["hygge/files"].value == len(files)
        assert metadata["hygge/bytes"].value == sum(path.stat().st_size for path in files)
        assert metadata["hygge/destination"].value == str(folder)
        assert metadata["hygge/run_type"].value == "full_drop"
        assert metadata["hygge/watermark_before"].value == "none"
        assert metadata["hygge/duration_seconds"].value > 0
        expected_rate = table.num_rows / metadata["hygge/duration_seconds"].value
        assert metadata["hygge/rows_per_second"].value == pytest.approx(expected_rate, rel=0.01)
        schema = metadata["dagster/column_schema"].value
        assert isinstance(schema, TableSchema)
        assert [(col.name, col.type) for col in schema.columns] == [(f.name, str(f.type)) for f in table.schema]
    checks = {(ev.asset_key, ev.check_name): ev for ev in result.get_asset_check_evaluations()}
    expected = {(key(name), check) for name in ENTITIES for check in ("row_count", "schema_drift", "not_empty")}
    assert set(checks) == expected
    assert all(ev.passed for ev in checks.values())
    assert checks[(key("orders"), "schema_drift")].description == "first load: nothing to compare"


def test_subset_selection_runs_only_the_selected_entity(sample_project: Path) -> None:
    job = build_definitions(sample_project).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=[key("orders")])
    assert result.success
    assert [event.asset_key for event in result.get_asset_materialization_events()] == [key("orders")]
    assert {ev.asset_key for ev in result.get_asset_check_evaluations()} == {key("orders")}
    assert lake(sample_project, "orders").is_dir()
    assert not lake(sample_project, "customers").exists() and not lake(sample_project, "products").exists()


def test_run_type_tag_overrides_every_entity(sample_project: Path) -> None:
    job = build_definitions(sample_project).resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(asset_selection=[key("products")]).success
    second = job.execute_in_process(asset_selection=[key("products")], tags={"hygge/run_type": "incremental"})
    assert second.success
    # Incremental with no new files: nothing published, so an observation instead of a materialisation.
    assert second.get_asset_materialization_events() == []
    observations = [e for e in second.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION]
    assert len(observations) == 1
    metadata = observations[0].event_specific_data.asset_observation.metadata
    assert metadata["hygge/run_type"].value == "incremental"
    assert "dagster/row_count" not in metadata  # nothing published: no table size to plot, not a dip to zero
    assert metadata["hygge/rows_loaded"].value == 0
    assert metadata["hygge/published"].value is False


def test_row_count_is_the_tables_rows_and_rows_loaded_the_runs(sample_project: Path) -> None:
    """A full drop, an incremental append of the same rows again, and a run with nothing new (issue 13).

    ``dagster/row_count`` is what the published folder holds (its Parquet footers), so the
    UI plots the table's size; ``hygge/rows_loaded`` is the run's own; the CLI reports the latter.
    """
    job = build_definitions(sample_project).resolve_implicit_global_asset_job_def()
    products, incremental = key("products"), {"hygge/run_type": "incremental"}
    one = source_rows(sample_project, "products")
    home = sample_project.parent.parent / "data" / "home" / "products"
    with DagsterInstance.ephemeral() as instance:
        first = job.execute_in_process(asset_selection=[products], instance=instance)
        (event,) = first.get_asset_materialization_events()
        assert event.materialization.metadata["dagster/row_count"].value == one
        assert event.materialization.metadata["hygge/rows_loaded"].value == one

        shutil.copy(home / "products.parquet", home / "products-again.parquet")
        second = job.execute_in_process(asset_selection=[products], tags=incremental, instance=instance)
        (event,) = second.get_asset_materialization_events()
        metadata = event.materialization.metadata
        in_lake = sum(pq.read_metadata(path).num_rows for path in lake(sample_project, "products").glob("*.parquet"))
        assert metadata["dagster/row_count"].value == in_lake == 2 * one
        assert metadata["hygge/rows_loaded"].value == one
        assert metadata["hygge/files"].value == 1
        (check,) = [ev for ev in second.get_asset_check_evaluations() if ev.check_name == "row_count"]
        assert check.passed
        assert (check.metadata["rows_written"].value, check.metadata["rows_in_table"].value) == (one, 2 * one)

        reader = RunEventReader([EntityStep("files_to_lake/products", products, "files_to_lake__products")])
        for entry in instance.all_logs(second.run_id):
            reader.read(entry)
        (outcome,) = reader.outcomes()
        assert (outcome.status, outcome.rows) == ("success", one)  # the CLI's figure is this run's rows

        third = job.execute_in_process(asset_selection=[products], tags=incremental, instance=instance)
        assert third.get_asset_materialization_events() == []
        (observation,) = [e for e in third.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION]
        metadata = observation.event_specific_data.asset_observation.metadata
        assert "dagster/row_count" not in metadata and "dagster/uri" not in metadata
        assert metadata["hygge/rows_loaded"].value == 0
        # The asset's latest row count is still the table's: the observation did not record a zero.
        latest = instance.get_latest_materialization_event(products)
        assert latest is not None and latest.asset_materialization.metadata["dagster/row_count"].value == 2 * one


def test_bad_run_type_tag_fails_with_a_clear_message(sample_project: Path) -> None:
    job = build_definitions(sample_project).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=[key("products")], tags={"hygge/run_type": "fullish"}, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert "hygge/run_type='fullish' is not a run type" in failure.event_specific_data.user_failure_data.description
    assert not lake(sample_project, "products").exists()


def test_translator_subclass_changes_keys_and_owners(sample_project: Path) -> None:
    from dagster import AssetSpec

    from hygge_dagster import DagsterHyggeTranslator, HyggeEntityData

    class Prefixed(DagsterHyggeTranslator):
        def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
            return super().get_asset_spec(data).replace_attributes(key=AssetKey(["lake", data.entity]), owners=["team:data"])

    defs = build_definitions(sample_project, translator=Prefixed())
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    assert set(specs) == {AssetKey(["lake", name]) for name in ENTITIES}
    assert specs[AssetKey(["lake", "orders"])].owners == ["team:data"]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(asset_selection=[AssetKey(["lake", "orders"])])
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [AssetKey(["lake", "orders"])]
    assert {ev.asset_key for ev in result.get_asset_check_evaluations()} == {AssetKey(["lake", "orders"])}


def test_source_assets_give_lineage_for_sql_connections(write_project) -> None:
    import fake_homes  # noqa: F401  (registers the test_memory home)

    root = write_project(
        """
        name: lineage
        dagster: {source_assets: true}
        connections:
          erp: {type: postgres, server: localhost, database: erp, pool_size: 3}
        flows:
          erp_to_lake:
            home: {type: test_memory, connection: erp}
            store: {type: parquet, path: lake}
            entities: [sales.orders]
        """
    )
    defs = build_definitions(root)
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    entity = specs[AssetKey(["erp_to_lake", "sales_orders"])]
    assert [dep.asset_key for dep in entity.deps] == [AssetKey(["erp", "sales", "orders"])]
    assert entity.kinds == {"test_memory", "parquet", "hygge"}
    assert entity.tags["hygge/connection"] == "erp"
    assert AssetKey(["erp", "sales", "orders"]) in specs
    (assets_def,) = [a for a in defs.assets if AssetKey(["erp_to_lake", "sales_orders"]) in a.keys]
    assert assets_def.op.pool is None  # the step claims a slot of hygge_erp per loading entity (pools.entity_slot)
