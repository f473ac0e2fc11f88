"""Durations written the way people write them in YAML: ``10s``, ``5m``, ``1h``, ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(value: Any) -> Any:
    """Accept ``"90s"``, ``"1h"``, plain seconds (int/float) or a ``timedelta``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration such as '30s', '5m' or '1h' is expected, not a boolean")
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError(f"{value!r} is not a duration; write it like '30s', '5m', '1h' or '2d'")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
