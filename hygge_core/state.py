"""What an entity remembers between runs, committed together with its data.

For the Parquet store this is ``<entity>/_hygge/state.json`` inside the published
version, so the watermark can never disagree with the files it describes. The
record carries a format number: a reader refuses a newer format it does not know
(an older hygge must not rewrite state it cannot understand) and migrates older ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hygge_core.config import RunType
from hygge_core.errors import StoreError

STATE_FORMAT = 3

WatermarkKind = Literal["int", "datetime", "date", "string"]


class Watermark(BaseModel):
    """A column's high-water mark, kept as text plus its kind so it round-trips exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    kind: WatermarkKind
    value: str

    def as_python(self) -> Any:
        if self.kind == "int":
            return int(self.value)
        if self.kind == "datetime":
            return datetime.fromisoformat(self.value)
        if self.kind == "date":
            return datetime.fromisoformat(self.value).date()
        return self.value


class EntityState(BaseModel):
    """The committed state of one entity. An entity never loaded has the default state."""

    model_config = ConfigDict(extra="forbid")

    format: int = STATE_FORMAT
    run_id: str | None = None
    run_type: RunType | None = None
    committed_at: datetime | None = None
    rows_last_run: int = 0
    files: list[str] = Field(default_factory=list, description="data files of the published version, relative to it")
    sizes: dict[str, int] = Field(
        default_factory=dict, description="bytes of each listed file, checked before a run builds on it"
    )
    file_partitions: dict[str, str] = Field(
        default_factory=dict,
        description="time partition key of each listed file loaded by a partition run; a partition run replaces its key's files",
    )
    columns: list[tuple[str, str]] = Field(default_factory=list, description="(name, arrow type): the version's one schema")
    watermark: Watermark | None = None
    home: dict[str, Any] = Field(default_factory=dict, description="home-specific progress, e.g. Parquet files already loaded")

    @property
    def is_new(self) -> bool:
        return self.run_id is None

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str) -> EntityState:
        """Parse a commit record, refusing formats newer than this hygge and migrating older ones.

        ``where`` names the record in errors (a file path, a table URI).
        """
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise StoreError(
                f"cannot read entity state {where}: not JSON ({exc}); run a full drop to rebuild the entity"
            ) from exc
        if not isinstance(raw, dict):
            raise StoreError(f"cannot read entity state {where}: expected a JSON object; run a full drop to rebuild the entity")
        version = raw.get("format", 1)
        if not isinstance(version, int) or version < 1:
            raise StoreError(f"cannot read entity state {where}: format {version!r} is not a state format")
        if version > STATE_FORMAT:
            raise StoreError(
                f"entity state {where} has format {version}, newer than this hygge understands ({STATE_FORMAT}); "
                "upgrade hygge, or run a full drop with this version to rebuild the entity"
            )
        for step in range(version, STATE_FORMAT):
            raw = _MIGRATIONS[step](raw)
        raw["format"] = STATE_FORMAT
        try:
            return cls.model_validate(raw)
        except ValueError as exc:
            raise StoreError(f"cannot read entity state {where}: {exc}; run a full drop to rebuild the entity") from exc


def _from_format_1(raw: dict[str, Any]) -> dict[str, Any]:
    """Format 2 adds ``sizes``; a format-1 record has none, so its files are checked for existence only."""
    return raw


def _from_format_2(raw: dict[str, Any]) -> dict[str, Any]:
    """Format 3 adds ``file_partitions``; a format-2 record's files belong to no time partition."""
    return raw


# Format N -> N+1, one function per step.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_format_1, 2: _from_format_2}


@dataclass(frozen=True)
class StateUpdate:
    """What a home hands the flow after reading, to commit with the data.

    ``progress`` is the home's own memory (Parquet files already loaded, rows seen in a
    lookback window), merged over the previous state. ``watermark`` is set by homes that
    fix the watermark themselves (SQL: the upper bound chosen before reading); otherwise
    the flow tracks the watermark column in the data.
    """

    progress: dict[str, Any] = field(default_factory=dict)
    watermark: Watermark | None = None
