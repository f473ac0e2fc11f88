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

from hygge_dagster.assets import build_hygge_asset_specs, build_hygge_assets
from hygge_dagster.code_location import PROJECT_ENV_VAR, build_definitions, project_definitions
from hygge_dagster.component import HyggeProjectComponent
from hygge_dagster.constants import RUN_TYPE_TAG, pool_name, sanitize
from hygge_dagster.outcomes import EntitiesRunReport, EntityOutcome
from hygge_dagster.pools import apply_pool_limits, pool_limits
from hygge_dagster.run import materialize_entities
from hygge_dagster.translator import DagsterHyggeTranslator, HyggeEntityData

__all__ = [
    "PROJECT_ENV_VAR",
    "RUN_TYPE_TAG",
    "DagsterHyggeTranslator",
    "EntitiesRunReport",
    "EntityOutcome",
    "HyggeEntityData",
    "HyggeProjectComponent",
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
