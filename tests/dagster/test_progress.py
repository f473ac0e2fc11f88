"""Progress lines while an entity runs: rows and rows/sec, at most one per interval."""

from __future__ import annotations

from hygge_core import Progress
from hygge_dagster.progress import ThrottledProgress


def test_progress_is_throttled_and_carries_rows_and_rate() -> None:
    now = [100.0]
    lines: list[str] = []
    progress = ThrottledProgress(lines.append, interval=2.0, clock=lambda: now[0])
    for seconds, rows in [(0.5, 1_000), (1.9, 5_000), (2.1, 6_000), (3.0, 9_000), (4.2, 12_600)]:
        now[0] = 100.0 + seconds
        progress(Progress("f", "e", rows, seconds))
    assert lines == ["f/e: 6,000 rows so far (2,857 rows/s)", "f/e: 12,600 rows so far (3,000 rows/s)"]
