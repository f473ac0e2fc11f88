"""The dg component: a defs.yaml naming a hygge project builds the project's definitions."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey
from dagster.components.testing import create_defs_folder_sandbox

from hygge_dagster import HyggeProjectComponent


def test_component_loads_from_defs_yaml(sample_project: Path) -> None:
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=HyggeProjectComponent,
            defs_yaml_contents={
                "type": "hygge_dagster.HyggeProjectComponent",
                "attributes": {"project": str(sample_project), "sensors": False, "executor": False},
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            assert isinstance(component, HyggeProjectComponent)
            keys = {spec.key for spec in defs.resolve_all_asset_specs()}
            assert keys == {AssetKey(["files_to_lake", name]) for name in ("customers", "orders", "products")}
            assert list(defs.sensors or []) == []
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                asset_selection=[AssetKey(["files_to_lake", "products"])]
            )
            assert result.success
    assert (sample_project.parent.parent / "lake" / "sample" / "products").is_dir()


def test_component_project_path_is_relative_to_its_folder(sample_project: Path) -> None:
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=HyggeProjectComponent,
            defs_yaml_contents={"type": "hygge_dagster.HyggeProjectComponent", "attributes": {"project": "hygge.yml"}},
        )
        (Path(defs_path) / "hygge.yml").write_text(
            sample_project.read_text().replace("../", str(sample_project.parent.parent) + "/")
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            assert [s.name for s in defs.sensors] == ["files_to_lake_files_sensor"]
