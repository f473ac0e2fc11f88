"""``hygge dev``: the Dagster UI for this project, through ``dg dev`` (``dagster dev`` is superseded by it).

The UI loads one code location named after the project (``name:`` in hygge.yml), from a
workspace file hygge writes into the project's Dagster home on every start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hygge_cli.instance import dagster_home, open_home_file, open_instance
from hygge_core.loading import find_project_file, read_project_name

# dg has no ``python -m`` entry point; this runs its console script's function in the interpreter hygge runs in,
# so the UI's code server imports the same hygge and the same packages (a ``dg`` on PATH may belong to another env).
DG_MAIN = "import sys; from dagster_dg_cli.cli import main; sys.argv[0] = 'dg'; sys.exit(main())"

WORKSPACE_FILE = "hygge-workspace.yaml"
WORKSPACE = """\
# Written by `hygge dev` on every start (edits are overwritten): one code location for the project
# {config_file}, named after its `name:`.
load_from:
  - python_module:
      module_name: hygge_dagster.definitions
      location_name: {location_name}
"""


def write_workspace(home: Path, *, config_file: Path, location_name: str) -> Path:
    """The workspace file ``dg dev -w`` loads; the location name is the only thing a module pointer cannot set.

    Named for hygge, so a ``workspace.yaml`` of the user's own in a shared ``$DAGSTER_HOME`` is never overwritten.
    """
    workspace = home / WORKSPACE_FILE
    with open_home_file(workspace, os.O_CREAT | os.O_TRUNC) as written:
        written.write(WORKSPACE.format(config_file=config_file, location_name=_yaml_string(location_name)).encode("utf-8"))
    return workspace


def _yaml_string(value: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML), so any project name stays one string."""
    return json.dumps(value)


def run_dev(args: argparse.Namespace) -> int:
    config_file = find_project_file(args.project)
    home = dagster_home(config_file.parent)
    workspace = write_workspace(home, config_file=config_file, location_name=read_project_name(config_file))
    open_instance(home).dispose()  # its storage exists before dg's webserver and daemon processes open it at once
    env = dict(os.environ)
    env["HYGGE_PROJECT"] = str(config_file)
    env["DAGSTER_HOME"] = str(home)
    command = [sys.executable, "-c", DG_MAIN, "dev", "-w", str(workspace), "-h", args.host, "-p", str(args.port)]
    print(f"Starting the Dagster UI on http://{args.host}:{args.port} for {config_file} (Ctrl-C to stop)", flush=True)
    os.execve(command[0], command, env)
    return 0  # not reached: exec replaced this process
