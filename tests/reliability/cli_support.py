"""Driving a real ``hygge`` process on a project, and proving what it did not touch.

``tree`` lists a folder the way a careful reviewer would compare it: every
folder, every file with a hash of its bytes, every symbolic link with its target,
without following links. Tests take it of the project folder (and of any link
target) before and after a run and assert equality outside the lake.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HYGGE = str(Path(sys.executable).with_name("hygge"))


def hygge(
    *args: str,
    project: Path,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``hygge ARGS`` in ``project`` with a Dagster home beside it, so the project holds only the user's files."""
    dagster_home = project.parent / f"{project.name}-dagster-home"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    full_env = {**os.environ, "COLUMNS": "400", "DAGSTER_HOME": str(dagster_home), **(env or {})}
    for key in [key for key in full_env if key.startswith(("PYTEST", "COV_"))]:
        del full_env[key]
    return subprocess.run(
        [HYGGE, *args], cwd=project, env=full_env, capture_output=True, text=True, timeout=600, preexec_fn=preexec_fn
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr as one string, with line breaks a wide terminal would not make undone."""
    return " ".join((done.stdout + done.stderr).split())


def tree(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): ``dir``, ``link -> target`` or the sha256 of a file.

    ``skip`` names top-level relative paths left out (the lake, when a run may change it).
    """
    listing: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in sorted(dirs + files):
            path = here / name
            relative = str(path.relative_to(root))
            if any(relative == s or relative.startswith(s + os.sep) for s in skip):
                continue
            if path.is_symlink():
                listing[relative] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                listing[relative] = "dir"
            else:
                listing[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
    return listing
