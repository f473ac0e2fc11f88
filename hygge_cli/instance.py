"""Where the CLI's Dagster runs are recorded, shared by ``hygge start``, ``hygge dev`` and the Dagster CLI.

``$DAGSTER_HOME`` wins; otherwise a project-local ``.dagster`` folder, so the runs
``hygge start`` makes are the ones ``hygge dev`` shows. ``hygge init`` creates that folder, so the
README's ``DAGSTER_HOME=$PWD/.dagster dg launch ...`` names the same instance from the first command on.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from hygge_core.errors import HyggeError

if TYPE_CHECKING:
    from dagster import DagsterInstance

LOCK_FILE = ".hygge-instance.lock"
SETTINGS = """\
# Written by hygge for this project's runs; edit freely.
telemetry:
  enabled: false
# Dagster's SQLite event log with its connections kept open: the same files, about 3x less time per
# event (hygge_dagster/event_log_storage.py). Delete this block to go back to Dagster's default.
event_log_storage:
  module: hygge_dagster.event_log_storage
  class: PooledSqliteEventLogStorage
  config:
    # normal: the run history is synced to disk at checkpoints, not at every event (a quarter less time).
    # A power cut can lose a run's last events, never the lake's data; write full to sync every event.
    synchronous: normal
"""


def dagster_home(project_root: Path) -> Path:
    """``$DAGSTER_HOME`` when set, else the project's own ``.dagster`` folder (created)."""
    if "DAGSTER_HOME" in os.environ:
        return Path(os.environ["DAGSTER_HOME"])
    return project_dagster_home(project_root)


def project_dagster_home(project_root: Path) -> Path:
    """``<project>/.dagster`` with a ``dagster.yaml``, created when missing (an existing one is never rewritten)."""
    home = project_root / ".dagster"
    _refuse_dangling_link(home)
    home.mkdir(exist_ok=True)
    settings = home / "dagster.yaml"
    try:
        written = open_home_file(settings, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        _refuse_dangling_link(settings)  # an existing file (or a link to one) is the user's: kept as it is
    else:
        with written:
            written.write(SETTINGS.encode("utf-8"))
    return home


def open_home_file(path: Path, flags: int) -> BinaryIO:
    """Open a file hygge writes in a Dagster home for writing, never through a symbolic link.

    A link there (``hygge-start.log`` pointing at a file of the user's, say) would have hygge
    truncate or create a file outside the home; the link is refused with an error naming it.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | flags, 0o644)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        raise HyggeError(
            f"{path} is a symbolic link (to {os.readlink(path)}); hygge writes only files of its own in the "
            "Dagster home and does not follow links there: remove the link"
        ) from None
    return os.fdopen(descriptor, "wb")


def _refuse_dangling_link(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise HyggeError(
            f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; hygge does not create "
            "files through links: remove the link, or create what it points to"
        )


def open_instance(home: Path) -> DagsterInstance:
    """The Dagster instance stored in ``home``, opened under an exclusive lock on ``home``.

    Opening an instance creates its SQLite databases when they are missing; two processes
    doing it at once on a new home (``hygge start`` twice, or with ``hygge dev``) made one
    fail with "table ... already exists". The lock makes the second wait for the first.
    """
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from hygge_dagster.event_log_storage import bound_to_home

    with open_home_file(home / LOCK_FILE, os.O_CREAT | os.O_APPEND) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=bound_to_home(home)))
