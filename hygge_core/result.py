"""What a run reports. Every figure the CLI and Dagster show comes from here, never from logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from hygge_core.checks import CheckResult
from hygge_core.config import RunType
from hygge_core.state import Watermark
from hygge_core.time_partitions import TimeWindow

if TYPE_CHECKING:
    from hygge_core.store import PublishResult

EntityStatus = Literal["success", "skipped", "failed"]
"""``success``: a new version was published; ``skipped``: nothing new, destination unchanged;
``failed``: an error, or a failed ERROR-severity check (the data may then be published: see ``published``)."""


@dataclass(frozen=True)
class EntityResult:
    flow: str
    entity: str
    run_type: RunType
    status: EntityStatus
    rows: int = 0
    bytes: int = 0
    files: int = 0
    seconds: float = 0.0
    destination: str = ""
    source: str = ""
    schema: pa.Schema | None = None
    previous_columns: list[tuple[str, str]] = field(default_factory=list)
    watermark_before: Watermark | None = None
    watermark_after: Watermark | None = None
    source_rows: int | None = None
    rows_published: int | None = None
    published: bool = False
    partition: TimeWindow | None = None
    """The time partition a partition run loaded (its key and window); ``None`` for other runs."""
    publish: PublishResult | None = None
    """The store's own account of the commit (rows in the table, URI, version); ``None`` when nothing was published."""
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    error_type: str | None = None
    attempts: int = 1

    @property
    def key(self) -> str:
        return f"{self.flow}/{self.entity}"

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class ProjectResult:
    entities: list[EntityResult]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.entities)

    @property
    def rows(self) -> int:
        return sum(result.rows for result in self.entities)

    @property
    def failed(self) -> list[EntityResult]:
        return [result for result in self.entities if not result.ok]
