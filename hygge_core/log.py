"""Scoped logging: every line about an entity carries ``[flow/entity]``.

Nothing here configures handlers; the CLI (or Dagster) decides where lines go.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

LOGGER_NAME = "hygge"


class EntityLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        scope = self.extra["scope"] if self.extra else ""
        extra = dict(kwargs.get("extra") or {})
        extra.update(self.extra or {})
        kwargs["extra"] = extra
        return f"[{scope}] {msg}", kwargs


def entity_logger(flow: str, entity: str) -> EntityLogger:
    return EntityLogger(logging.getLogger(f"{LOGGER_NAME}.flow"), {"scope": f"{flow}/{entity}", "flow": flow, "entity": entity})


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")
