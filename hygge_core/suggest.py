"""The "did you mean" hint every configuration error uses for a mistyped name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(option) for option in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
