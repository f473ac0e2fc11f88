"""``hygge init NAME``."""

from __future__ import annotations

import argparse
from pathlib import Path

from hygge_cli.scaffold import scaffold


def run_init(args: argparse.Namespace) -> int:
    target = Path(args.name)
    written = scaffold(target, name=target.name, force=args.force)
    print(f"Created project {target.name!r} in {target}/ ({len(written)} files).")
    print("Next:")
    print(f"  cd {target}")
    print("  hygge debug      # check the configuration and paths")
    print("  hygge start      # load the sample into lake/")
    print("  hygge dev        # browse the assets in the Dagster UI")
    return 0
