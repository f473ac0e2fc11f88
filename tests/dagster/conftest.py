"""Fixtures for the Dagster suite: a private copy of the bundled sample, so the repo is never written."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# The suite runs with --import-mode=importlib, which leaves sys.path alone. Test-only home
# types live in ``fake_homes.py`` and must be importable by that plain name, also in the
# step processes the multiprocess executor starts (they inherit this sys.path).
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """The sample's YAML and data under ``tmp_path`` in the repo's layout; returns the YAML path.

    The sample writes to ``../lake/sample`` relative to its YAML, so the lake lands in ``tmp_path/lake``.
    """
    (tmp_path / "samples").mkdir()
    shutil.copy(REPO_ROOT / "samples" / "parquet_to_parquet.yaml", tmp_path / "samples" / "parquet_to_parquet.yaml")
    shutil.copytree(REPO_ROOT / "data" / "home", tmp_path / "data" / "home")
    return tmp_path / "samples" / "parquet_to_parquet.yaml"
