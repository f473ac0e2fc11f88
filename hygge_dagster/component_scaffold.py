"""``dg scaffold defs hygge_dagster.HyggeProjectComponent NAME [--project PATH]``: a ``defs.yaml`` that loads as written.

The project path is written relative to the dg project root (``{{ context.project_root }}/...``), so it stays right
whatever depth the defs folder has (``src/<package>/defs/<name>/`` in a ``create-dagster`` project).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from dagster.components import Scaffolder, ScaffoldRequest, scaffold_component
from pydantic import BaseModel, Field

from hygge_core.loading import PROJECT_FILE_NAMES

ROOT = "{{ context.project_root }}"


class HyggeProjectScaffoldParams(BaseModel):
    """What ``dg scaffold defs`` takes as options (``--project``)."""

    project: str | None = Field(
        default=None,
        description="The hygge project (hygge.yml or its folder), relative to the dg project root. "
        "Default: the one hygge.yml in the dg project root or in a folder directly under it.",
    )


class HyggeProjectScaffolder(Scaffolder[HyggeProjectScaffoldParams]):
    """Writes ``defs.yaml`` with ``project:`` pointing at the hygge project from the dg project root."""

    @classmethod
    def get_scaffold_params(cls) -> type[HyggeProjectScaffoldParams]:
        return HyggeProjectScaffoldParams

    def scaffold(self, request: ScaffoldRequest[HyggeProjectScaffoldParams]) -> None:
        root = (request.project_root or Path.cwd()).absolute()
        scaffold_component(request, {"project": project_attribute(root, request.params.project)})


def project_attribute(root: Path, given: str | None) -> str:
    """The ``project:`` value: ``{{ context.project_root }}/<path>`` for a project under the dg root, else absolute."""
    if given is None:
        found = find_hygge_projects(root)
        if len(found) > 1:
            listed = ", ".join(str(path.relative_to(root)) for path in found)
            raise click.UsageError(f"several hygge projects under {root} ({listed}); pick one with --project PATH")
        if not found:
            print(
                f"hygge: no hygge.yml in {root} or a folder directly under it; defs.yaml names {root / 'hygge.yml'}. "
                "Create the project with `hygge init NAME` (then set project: to NAME), or pass --project PATH.",
                file=sys.stderr,
            )
            return f"{ROOT}/hygge.yml"
        path = found[0]
    else:
        path = Path(given) if Path(given).is_absolute() else root / given
    path = Path(os.path.normpath(path.absolute()))
    try:
        relative = path.relative_to(root)
    except ValueError:
        return str(path)  # outside the dg project: only an absolute path can name it
    return f"{ROOT}/{relative.as_posix()}" if relative.parts else ROOT


def find_hygge_projects(root: Path) -> list[Path]:
    """``hygge.yml`` in ``root``, else in its direct sub-folders (where ``hygge init NAME`` puts one)."""
    at_root = [root / name for name in PROJECT_FILE_NAMES if (root / name).is_file()]
    if at_root:
        return at_root[:1]
    found = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            found.extend([folder / name for name in PROJECT_FILE_NAMES if (folder / name).is_file()][:1])
    return found
