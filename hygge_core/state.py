"""What an entity remembers between runs, committed together with its data.

For the Parquet store this is ``<entity>/_hygge/state.json`` inside the published
version, so the watermark can never disagree with the files it describes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STATE_FORMAT = 1


class Watermark(BaseModel):
    """A column's high-water mark, kept as text plus its kind so it round-trips exactly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    kind: str = Field(description="'int', 'datetime', 'date' or 'string'")
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
    run_type: str | None = None
    committed_at: datetime | None = None
    rows_last_run: int = 0
    files: list[str] = Field(default_factory=list, description="data files of the published version, relative to it")
    columns: list[tuple[str, str]] = Field(default_factory=list, description="(name, arrow type) of the written schema")
    watermark: Watermark | None = None
    home: dict[str, Any] = Field(default_factory=dict, description="home-specific progress, e.g. Parquet files already loaded")

    @property
    def is_new(self) -> bool:
        return self.run_id is None
