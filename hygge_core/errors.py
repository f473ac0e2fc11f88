"""Errors a hygge user can cause or meet, sorted by what should happen next.

The split matters to the Dagster face and the runner: a ``TransientError`` is
worth retrying (a dropped connection, a timeout); every other ``HyggeError`` is
a configuration or data problem that no retry will fix.
"""

from __future__ import annotations


class HyggeError(Exception):
    """Base class: the message says what happened, where, and what to do."""


class ConfigError(HyggeError):
    """The project configuration is wrong. Holds every problem found, not just the first."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class HomeError(HyggeError):
    """Reading from a home failed for a reason a retry will not fix (missing file, corrupt data)."""


class StoreError(HyggeError):
    """Writing or publishing to a store failed (permission denied, disk full, bad schema)."""


class TransientError(HyggeError):
    """A failure worth retrying: a lost connection, a timeout, a busy server."""


class EntityBusy(TransientError):
    """Another run holds the entity's lock; a partition run waits for it rather than failing."""


class Cancelled(BaseException):  # noqa: N818  (a stop, not an error: named for what happened)
    """The caller asked the entity to stop (its ``cancel`` event was set): nothing was published.

    A ``BaseException`` like ``KeyboardInterrupt``, so no ``except Exception`` (retries,
    the runner's failed results) turns a requested stop into a failure or a retry. Raised
    on a worker thread, where signals never arrive, when the thread that got the signal
    asks its workers to stop.
    """
