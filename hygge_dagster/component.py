"""The ``dg`` component: a hygge project as a folder of ``defs.yaml``.

``dg scaffold defs hygge_dagster.HyggeProjectComponent lake`` writes (see ``component_scaffold.py``):

.. code-block:: yaml

    # src/<package>/defs/lake/defs.yaml
    type: hygge_dagster.HyggeProjectComponent
    attributes:
      project: "{{ context.project_root }}/hygge.yml"   # or a folder holding hygge.yml
      flows: [files_to_lake]        # optional: only these flows
      schedules: true
      sensors: true
      executor: true                # use the executor from hygge.yml's dagster: block
      translation:                  # optional: change each entity's asset spec, like DagsterHyggeTranslator
        key: "lake/{{ entity }}"
        group_name: lake
        tags: {tier: bronze}
        owners: ["team:data"]
        automation_condition: "{{ dg.AutomationCondition.on_cron('0 2 * * *') }}"

No ``from __future__ import annotations`` here: Resolvable reads the field types at runtime.

Registered for ``dg list components`` through the ``dagster_dg_cli.registry_modules``
entry point in pyproject.toml.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from dagster import AssetSpec, Definitions
from dagster.components import Component, ComponentLoadContext, Resolvable, Resolver, scaffold_with

# Dagster's own integrations (sling, dlt, fivetran) build their `translation:` blocks from this module.
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver

from hygge_core.errors import ConfigError
from hygge_core.loading import PROJECT_FILE_NAMES, load_project
from hygge_dagster import constants as c
from hygge_dagster.code_location import project_definitions
from hygge_dagster.component_scaffold import HyggeProjectScaffolder
from hygge_dagster.translator import DagsterHyggeTranslator, HyggeEntityData

RELATIVE_PATHS = (
    "A relative path is relative to this defs.yaml's folder; write '{{ context.project_root }}/...' to start from the "
    "dg project root (what `dg scaffold defs` writes)."
)
PROJECT_HELP = f"The hygge project: its hygge.yml, or the folder holding it. {RELATIVE_PATHS}"
TRANSLATION_HELP = (
    "Changes to every entity's asset spec, applied over hygge's default (key [flow, entity], group = flow, kinds, "
    "tags, owners, freshness from hygge.yml). Takes the AssetSpec attributes key, key_prefix, group_name, tags, owners, "
    "automation_condition, description, metadata, kinds, code_version; tags and metadata are merged, the rest replaced. "
    "Templates see {{ flow }} and {{ entity }} (the sanitised key parts), {{ data }} (HyggeEntityData: raw names, "
    "home_type, store_type, connection_name, plan) and {{ spec }} (the default spec)."
)


def _template_vars(data: HyggeEntityData) -> dict[str, object]:
    return {"data": data, "flow": c.sanitize(data.flow), "entity": c.sanitize(data.entity)}


@dataclass
class TranslationBlockTranslator(DagsterHyggeTranslator):
    """hygge's default spec for an entity, then the component's ``translation:`` block over it."""

    translation: TranslationFn[HyggeEntityData]

    def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
        return self.translation(super().get_asset_spec(data), data)


@scaffold_with(HyggeProjectScaffolder)
@dataclass
class HyggeProjectComponent(Component, Resolvable):
    """Every entity of a hygge project as a Dagster asset, with its checks, schedules and file sensors.

    Scaffold it with `dg scaffold defs hygge_dagster.HyggeProjectComponent <name> [--project PATH]`.
    """

    project: Annotated[str, Resolver.default(description=PROJECT_HELP, examples=["{{ context.project_root }}/hygge.yml"])]
    flows: Annotated[
        list[str], Resolver.default(description="Only these flows of the project (all when empty).", examples=[["files_to_lake"]])
    ] = field(default_factory=list)
    schedules: Annotated[bool, Resolver.default(description="A schedule for each flow with a `schedule:` in hygge.yml.")] = True
    sensors: Annotated[
        bool, Resolver.default(description="A sensor for each Parquet-home flow that requests runs when source files change.")
    ] = True
    executor: Annotated[
        bool,
        Resolver.default(
            description="Use the executor of hygge.yml's `dagster:` block; false leaves it to the code location "
            "(only one component of a code location may set it)."
        ),
    ] = True
    translation: Annotated[
        Annotated[TranslationFn[HyggeEntityData], TranslationFnResolver[HyggeEntityData](_template_vars)] | None,
        Resolver.default(description=TRANSLATION_HELP),
    ] = None

    def project_file(self, context: ComponentLoadContext) -> Path:
        """The project's YAML file, from ``project:`` normalised (no ``..`` left), so errors name the real place."""
        given = Path(self.project)
        path = Path(os.path.normpath(given if given.is_absolute() else context.path / given))
        if path.is_file():
            return path
        if path.is_dir():
            for name in PROJECT_FILE_NAMES:
                if (path / name).is_file():
                    return path / name
            raise ConfigError(f"{self._where(context)}: project: {self.project!r} is the folder {path}, which holds no hygge.yml")
        raise ConfigError(f"{self._where(context)}: project: {self.project!r} is {path}, which does not exist. {RELATIVE_PATHS}")

    @staticmethod
    def _where(context: ComponentLoadContext) -> str:
        defs_yaml = context.path / "defs.yaml"
        try:
            return str(defs_yaml.relative_to(context.project_root))
        except ValueError:
            return str(defs_yaml)

    def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
        """One entity's spec: hygge's default with the ``translation:`` block applied. Override in a subclass for logic
        YAML cannot express (call ``super()`` and change the result)."""
        return self.translator().get_asset_spec(data)

    def translator(self) -> DagsterHyggeTranslator:
        return TranslationBlockTranslator(self.translation) if self.translation is not None else DagsterHyggeTranslator()

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        project = load_project(self.project_file(context))
        defs = project_definitions(
            project,
            translator=_ComponentTranslator(self),
            flows=self.flows,
            schedules=self.schedules,
            sensors=self.sensors,
        )
        if self.executor:
            return defs
        # Leave the executor to the surrounding code location (several components cannot each set one).
        return Definitions(assets=defs.assets, schedules=defs.schedules, sensors=defs.sensors)


@dataclass
class _ComponentTranslator(DagsterHyggeTranslator):
    """Routes the asset factory's translator calls to the component, so a subclass's ``get_asset_spec`` is used."""

    component: HyggeProjectComponent

    def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
        return self.component.get_asset_spec(data)
