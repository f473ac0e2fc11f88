"""Progress lines while an entity runs, throttled so a fast load does not flood the event log.

Every log line is an event written to the instance's storage (≈25 ms each on
sqlite), so lines are spaced at least ``interval`` seconds apart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from hygge_core.flow import Progress

DEFAULT_INTERVAL_SECONDS = 2.0


class ThrottledProgress:
    """A ``progress=`` callback for ``run_entity`` that logs rows and rows/sec at most every ``interval`` s."""

    def __init__(
        self,
        log: Callable[[str], None],
        *,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._last = clock()  # the first line comes after one interval: short loads log none

    def __call__(self, progress: Progress) -> None:
        now = self._clock()
        if now - self._last < self._interval:
            return
        self._last = now
        self._log(f"{progress.flow}/{progress.entity}: {progress.rows:,} rows so far ({progress.rows_per_second:,.0f} rows/s)")


_LINE = re.compile(r"^(?P<key>[^:\s]+/[^:]+): (?P<rows>[\d,]+) rows so far \((?P<rate>[\d,]+) rows/s\)$")


def parse_progress_line(message: str) -> tuple[str, int, float] | None:
    """``(flow/entity, rows, rows/sec)`` from a line ``ThrottledProgress`` wrote, else ``None``.

    The ``hygge start`` CLI reads these from the run's event log to draw its bars; the
    format lives here, next to the code that writes it.
    """
    match = _LINE.match(message.strip())
    if match is None:
        return None
    return match["key"], int(match["rows"].replace(",", "")), float(match["rate"].replace(",", ""))
