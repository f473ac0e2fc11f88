"""hygge's Dagster face: one asset per entity, with live metadata, checks, retries, pools, schedules and sensors.

Public API (what the ``hygge`` CLI and users call):

* ``build_definitions(project_path=None, *, translator=None) -> Definitions``: a project's
  assets, schedules, sensors and executor. ``project_path`` defaults to ``$HYGGE_PROJECT``,
  else the bundled ``samples/parquet_to_parquet.yaml``. ``hygge_dagster.definitions.defs``
  is the same for ``dagster asset materialize -m hygge_dagster.definitions``, and
  ``workspace.yaml`` at the repository root loads it for ``dagster dev``.
* ``materialize_entities(project, plans, *, instance, run_type=None, max_concurrent=None, tags=None)
  -> EntitiesRunReport``: run the selected entities in one Dagster run (multiprocess, or in
  process when ``max_concurrent == 1``) on ``instance`` and read each entity's outcome
  back from the run's event log.
* Run tag ``hygge/run_type`` = ``full_drop`` | ``incremental`` (``RUN_TYPE_TAG``): every entity of
  that run uses it.
* ``DagsterHyggeTranslator`` / ``HyggeEntityData``: override ``get_asset_spec`` to change keys,
  groups, owners, tags, automation.
* ``HyggeProjectComponent``: the ``dg`` component (``defs.yaml`` with ``project:`` and an optional ``translation:``
  block; ``dg scaffold defs hygge_dagster.HyggeProjectComponent NAME`` writes one that loads).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hygge_dagster.assets import build_hygge_asset_specs, build_hygge_assets
    from hygge_dagster.code_location import PROJECT_ENV_VAR, build_definitions, project_definitions
    from hygge_dagster.component import HyggeProjectComponent
    from hygge_dagster.constants import RUN_TYPE_TAG, pool_name, sanitize
    from hygge_dagster.outcomes import EntitiesRunReport, EntityOutcome
    from hygge_dagster.pools import apply_pool_limits, pool_limits
    from hygge_dagster.run import materialize_entities
    from hygge_dagster.translator import DagsterHyggeTranslator, HyggeEntityData

# The public names are imported when first asked for. Dagster's webserver and daemon import
# ``hygge_dagster.event_log_storage`` (named in dagster.yaml), which runs this file first: importing the
# whole engine here cost them 0.3 s and about 60 MiB each for modules they never use.
_PUBLIC = {
    "PROJECT_ENV_VAR": "code_location",
    "RUN_TYPE_TAG": "constants",
    "DagsterHyggeTranslator": "translator",
    "EntitiesRunReport": "outcomes",
    "EntityOutcome": "outcomes",
    "HyggeEntityData": "translator",
    "HyggeProjectComponent": "component",
    "apply_pool_limits": "pools",
    "build_definitions": "code_location",
    "build_hygge_asset_specs": "assets",
    "build_hygge_assets": "assets",
    "materialize_entities": "run",
    "pool_limits": "pools",
    "pool_name": "constants",
    "project_definitions": "code_location",
    "sanitize": "constants",
}
__all__ = [
    "DagsterHyggeTranslator",
    "EntitiesRunReport",
    "EntityOutcome",
    "HyggeEntityData",
    "HyggeProjectComponent",
    "PROJECT_ENV_VAR",
    "RUN_TYPE_TAG",
    "apply_pool_limits",
    "build_definitions",
    "build_hygge_asset_specs",
    "build_hygge_assets",
    "materialize_entities",
    "pool_limits",
    "pool_name",
    "project_definitions",
    "sanitize",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'hygge_dagster' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hygge_dagster.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
