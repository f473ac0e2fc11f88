"""Fixtures of the store suite: the emulators are session-wide and live in ``lakes.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .lakes import Lake, azure_lake, azure_oauth_server, azure_server, s3_lake, s3_server
from .support import option_env

__all__ = ["azure_oauth_server", "azure_server", "env", "lake", "s3_server"]


@pytest.fixture(params=["local", "s3", "azure"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """The same tests on local disk, S3 (moto) and Azure Blob (Azurite)."""
    if request.param == "local":
        return Lake(name="local", root=str(tmp_path / "lake"))
    if request.param == "s3":
        return s3_lake(request.getfixturevalue("s3_server"))
    return azure_lake(request.getfixturevalue("azure_server"))


@pytest.fixture
def env(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The storage options reach the project through ``${ENV}`` variables, as users are told to write them."""
    values = option_env(lake.options)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
