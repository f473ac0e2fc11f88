"""Fixtures shared by every suite: real files in temporary folders, nothing mocked."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_project(tmp_path: Path) -> Callable[[str], Path]:
    """Write ``hygge.yml`` (dedented) into a fresh project folder and return the folder."""

    def write(yaml_text: str, *, folder: str = "project") -> Path:
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        (root / "hygge.yml").write_text(textwrap.dedent(yaml_text), encoding="utf-8")
        return root

    return write
