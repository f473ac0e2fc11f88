"""The ``dg`` component: a hygge project as a folder of ``defs.yaml``.

.. code-block:: yaml

    # defs/lake/defs.yaml
    type: hygge_dagster.HyggeProjectComponent
    attributes:
      project: ../../hygge.yml      # relative to this folder
      flows: [files_to_lake]        # optional: only these flows
      schedules: true
      sensors: true
      executor: true                # use the executor from hygge.yml's dagster: block

No ``from __future__ import annotations`` here: Resolvable reads the field types at runtime.

Registered for ``dg list components`` through the ``dagster_dg_cli.registry_modules``
entry point in pyproject.toml.
"""

from dataclasses import dataclass, field
from pathlib import Path

from dagster import Definitions
from dagster.components import Component, ComponentLoadContext, Resolvable

from hygge_core.loading import load_project
from hygge_dagster.code_location import project_definitions


@dataclass
class HyggeProjectComponent(Component, Resolvable):
    """Every entity of a hygge project as an asset, with its schedules and file sensors."""

    project: str
    flows: list[str] = field(default_factory=list)
    schedules: bool = True
    sensors: bool = True
    executor: bool = True

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        path = Path(self.project)
        project = load_project(path if path.is_absolute() else context.path / path)
        defs = project_definitions(project, flows=self.flows, schedules=self.schedules, sensors=self.sensors)
        if self.executor:
            return defs
        # Leave the executor to the surrounding code location (several components cannot each set one).
        return Definitions(assets=defs.assets, schedules=defs.schedules, sensors=defs.sensors)
