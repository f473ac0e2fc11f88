"""What a home or a store may know about the entity it serves.

Homes and stores get this small record instead of the whole plan, so a new home or
store cannot come to depend on how projects are loaded, validated or selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hygge_core.config import ConnectionConfig, SchemaChange, WatermarkConfig
from hygge_core.time_partitions import TimeWindow


@dataclass(frozen=True)
class EntityContext:
    """The entity's name, where its project lives, its watermark settings and its connection (SQL homes)."""

    flow: str
    entity: str
    project_root: Path
    watermark: WatermarkConfig | None = None
    connection_name: str | None = None
    connection: ConnectionConfig | None = None
    schema_change: SchemaChange = "fail"
    time_window: TimeWindow | None = None
    """Set for a partition run: the home reads only this window and the store replaces only this partition."""

    @property
    def key(self) -> str:
        """``flow/entity``: how every message names the entity."""
        return f"{self.flow}/{self.entity}"
