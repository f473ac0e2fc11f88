"""Where the CLI's Dagster runs are recorded, shared by ``hygge start`` and ``hygge dev``.

``$DAGSTER_HOME`` wins; otherwise a project-local ``.dagster`` folder, so the runs
``hygge start`` makes are the ones ``hygge dev`` shows.
"""

from __future__ import annotations

import os
from pathlib import Path


def dagster_home(project_root: Path) -> Path:
    """``$DAGSTER_HOME`` when set, else a project-local ``.dagster`` folder (created)."""
    if "DAGSTER_HOME" in os.environ:
        return Path(os.environ["DAGSTER_HOME"])
    home = project_root / ".dagster"
    home.mkdir(exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(
            "# Written by hygge for this project's runs; edit freely.\ntelemetry:\n  enabled: false\n", encoding="utf-8"
        )
    return home
