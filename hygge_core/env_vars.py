"""``${VAR}`` and ``${VAR:-default}`` expansion in configuration values.

Expansion happens after YAML parsing, on string values only, so a variable can
never inject YAML structure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingVariable(Exception):
    def __init__(self, name: str, key_path: str) -> None:
        self.name = name
        self.key_path = key_path
        super().__init__(name)


def expand(value: Any, *, environ: Mapping[str, str] | None = None, key_path: str = "") -> Any:
    """Return ``value`` with every ``${VAR}`` replaced; raise ``MissingVariable`` for unset ones."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        return _expand_string(value, env, key_path)
    if isinstance(value, dict):
        return {k: expand(v, environ=env, key_path=_join(key_path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, environ=env, key_path=_join(key_path, str(i))) for i, v in enumerate(value)]
    return value


def _expand_string(text: str, env: Mapping[str, str], key_path: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise MissingVariable(name, key_path)

    return _PATTERN.sub(substitute, text)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
