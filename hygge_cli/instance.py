"""Where the CLI's Dagster runs are recorded, shared by ``hygge start``, ``hygge dev`` and the Dagster CLI.

``$DAGSTER_HOME`` wins; otherwise a project-local ``.dagster`` folder, so the runs
``hygge start`` makes are the ones ``hygge dev`` shows. ``hygge init`` creates that folder, so the
README's ``DAGSTER_HOME=$PWD/.dagster dg launch ...`` names the same instance from the first command on.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

LOCK_FILE = ".hygge-instance.lock"
SETTINGS = """\
# Written by hygge for this project's runs; edit freely.
telemetry:
  enabled: false
# Dagster's SQLite event log with its connections kept open: the same files, about 2.5x less time per
# event (hygge_dagster/event_log_storage.py). Delete this block to go back to Dagster's default.
event_log_storage:
  module: hygge_dagster.event_log_storage
  class: PooledSqliteEventLogStorage
"""


def dagster_home(project_root: Path) -> Path:
    """``$DAGSTER_HOME`` when set, else the project's own ``.dagster`` folder (created)."""
    if "DAGSTER_HOME" in os.environ:
        return Path(os.environ["DAGSTER_HOME"])
    return project_dagster_home(project_root)


def project_dagster_home(project_root: Path) -> Path:
    """``<project>/.dagster`` with a ``dagster.yaml``, created when missing (an existing one is never rewritten)."""
    home = project_root / ".dagster"
    home.mkdir(exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(SETTINGS, encoding="utf-8")
    return home


def open_instance(home: Path) -> DagsterInstance:
    """The Dagster instance stored in ``home``, opened under an exclusive lock on ``home``.

    Opening an instance creates its SQLite databases when they are missing; two processes
    doing it at once on a new home (``hygge start`` twice, or with ``hygge dev``) made one
    fail with "table ... already exists". The lock makes the second wait for the first.
    """
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from hygge_dagster.event_log_storage import bound_to_home

    with open(home / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=bound_to_home(home)))
