"""hygge's engine: load a project, run its entities, publish atomically. No Dagster needed.

import hygge_core
project = hygge_core.load_project("path/to/project")
result = hygge_core.run_project(project)
one = hygge_core.run_entity(project.entity("files_to_lake/numbers"))
"""

from hygge_core.checks import CheckResult, CheckSpec
from hygge_core.context import EntityContext
from hygge_core.errors import ConfigError, HomeError, HyggeError, StoreError, TransientError
from hygge_core.flow import Progress, run_entity
from hygge_core.home import Home, HomeConfig
from hygge_core.loading import load_project
from hygge_core.project import EntityPlan, Project
from hygge_core.result import EntityResult, ProjectResult
from hygge_core.runner import run_project, run_with_retries
from hygge_core.state import EntityState, StateUpdate, Watermark
from hygge_core.store import Store, StoreConfig

__all__ = [
    "CheckResult",
    "CheckSpec",
    "ConfigError",
    "EntityContext",
    "EntityPlan",
    "EntityResult",
    "EntityState",
    "Home",
    "HomeConfig",
    "HomeError",
    "HyggeError",
    "Progress",
    "Project",
    "ProjectResult",
    "Store",
    "StoreConfig",
    "StateUpdate",
    "StoreError",
    "TransientError",
    "Watermark",
    "load_project",
    "run_entity",
    "run_project",
    "run_with_retries",
]
