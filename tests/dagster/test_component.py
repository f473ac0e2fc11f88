"""The dg component: a defs.yaml naming a hygge project builds the project's definitions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, AssetSpec
from dagster.components.testing import create_defs_folder_sandbox

from hygge_dagster import HyggeEntityData, HyggeProjectComponent


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


def _translated_defs_yaml(project: Path, translation: dict[str, object]) -> dict[str, object]:
    return {
        "type": "hygge_dagster.HyggeProjectComponent",
        "attributes": {"project": str(project), "sensors": False, "executor": False, "translation": translation},
    }


def test_translation_block_changes_key_group_tags_owners_and_automation(sample_project: Path) -> None:
    translation = {
        "key_prefix": "lake",
        "group_name": "bronze_{{ flow }}",
        "tags": {"tier": "bronze", "source": "{{ data.home_type }}"},
        "owners": ["team:data"],
        "automation_condition": "{{ dg.AutomationCondition.on_cron('0 2 * * *') }}",
    }
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=HyggeProjectComponent, defs_yaml_contents=_translated_defs_yaml(sample_project, translation)
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
            orders = specs[AssetKey(["lake", "files_to_lake", "orders"])]
            assert set(specs) == {AssetKey(["lake", "files_to_lake", name]) for name in ("customers", "orders", "products")}
            assert orders.group_name == "bronze_files_to_lake"
            # merged over hygge's own tags, which the UI's flow filter and the sensors rely on
            tags = {key: value for key, value in orders.tags.items() if not key.startswith("dagster/kind/")}
            assert tags == {"hygge/flow": "files_to_lake", "tier": "bronze", "source": "parquet"}
            assert orders.kinds == {"parquet", "hygge"}
            assert orders.owners == ["team:data"]
            assert orders.automation_condition is not None and "0 2 * * *" in orders.automation_condition.get_label()
            assert orders.metadata["hygge/entity"] == "orders"  # the rest of hygge's spec is kept
            checks = set(defs.resolve_asset_graph().asset_check_keys)
            assert AssetCheckKey(AssetKey(["lake", "files_to_lake", "orders"]), "row_count") in checks
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                asset_selection=[AssetKey(["lake", "files_to_lake", "orders"])]
            )
            assert result.success
            (materialization,) = result.asset_materializations_for_node("lake__files_to_lake__orders")
            assert materialization.metadata["dagster/row_count"].value == 2000
    assert (sample_project.parent.parent / "lake" / "sample" / "orders").is_dir()


def test_translation_key_template_renames_assets(sample_project: Path) -> None:
    translation = {"key": "warehouse/{{ entity }}"}
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=HyggeProjectComponent, defs_yaml_contents=_translated_defs_yaml(sample_project, translation)
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    assert keys == {AssetKey(["warehouse", name]) for name in ("customers", "orders", "products")}


def test_a_subclass_changes_specs_in_python(sample_project: Path) -> None:
    """The Python route the translation block mirrors: override get_asset_spec, start from super()."""
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=OwnedComponent,
            defs_yaml_contents={
                "type": f"{__name__}.OwnedComponent",
                "attributes": {"project": str(sample_project), "sensors": False, "translation": {"group_name": "lake"}},
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            specs = list(defs.resolve_all_asset_specs())
    assert {(spec.group_name, tuple(spec.owners)) for spec in specs} == {("lake", ("team:owned",))}


class OwnedComponent(HyggeProjectComponent):
    def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
        return super().get_asset_spec(data).replace_attributes(owners=["team:owned"])


def test_project_may_name_the_folder_holding_hygge_yml(sample_project: Path) -> None:
    project_dir = sample_project.parent.parent / "lake_project"
    project_dir.mkdir()
    (project_dir / "hygge.yml").write_text(sample_project.read_text().replace("../", str(sample_project.parent.parent) + "/"))
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=HyggeProjectComponent,
            defs_yaml_contents={"type": "hygge_dagster.HyggeProjectComponent", "attributes": {"project": str(project_dir)}},
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
            assert len(list(defs.resolve_all_asset_specs())) == 3


def test_a_missing_project_is_named_normalised(sample_project: Path) -> None:
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.scaffold_component(
            component_cls=HyggeProjectComponent,
            defs_yaml_contents={"type": "hygge_dagster.HyggeProjectComponent", "attributes": {"project": "../../hygge.yml"}},
        )
        expected = Path(os.path.normpath(Path(defs_path) / "../../hygge.yml"))
        with pytest.raises(Exception) as raised, sandbox.load_component_and_build_defs(defs_path=defs_path):
            pass
    message = _all_messages(raised.value)
    assert f"project: '../../hygge.yml' is {expected}, which does not exist" in message
    assert "{{ context.project_root }}" in message
    assert "/../" not in message.split("is ", 1)[1].split(",", 1)[0]


def _all_messages(error: BaseException) -> str:
    """Dagster wraps a component's error; the chain holds hygge's."""
    messages = []
    current: BaseException | None = error
    while current is not None:
        messages.append(str(current))
        current = current.__cause__ or current.__context__
    return "\n".join(messages)
