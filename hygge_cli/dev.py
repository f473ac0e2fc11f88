"""``hygge dev``: the Dagster UI for this project."""

from __future__ import annotations

import argparse
import os
import sys

from hygge_cli.instance import dagster_home
from hygge_core.loading import find_project_file


def run_dev(args: argparse.Namespace) -> int:
    config_file = find_project_file(args.project)
    env = dict(os.environ)
    env["HYGGE_PROJECT"] = str(config_file)
    env["DAGSTER_HOME"] = str(dagster_home(config_file.parent))
    command = [sys.executable, "-m", "dagster", "dev", "-m", "hygge_dagster.definitions", "-h", args.host, "-p", str(args.port)]
    print(f"Starting the Dagster UI on http://{args.host}:{args.port} for {config_file} (Ctrl-C to stop)")
    os.execve(command[0], command, env)
    return 0  # not reached: exec replaced this process
