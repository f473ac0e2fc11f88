"""Entity names become folder names, so they must never escape their store root."""

from __future__ import annotations

import re

from hygge_core.errors import ConfigError

_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f/\\]")
RESERVED_NAMES = frozenset({".hygge-staging", "_hygge"})  # the store's staging folder and state folder


def check_entity_name(name: str, *, where: str) -> str:
    """Return ``name`` unchanged if it is a safe single path segment, else raise.

    Configured names are rejected rather than rewritten: a user who typed
    ``../secrets`` should hear about it, not find their data in a renamed folder.
    """
    problem = _unsafe_reason(name)
    if problem:
        raise ConfigError(f"{where}: entity name {name!r} {problem}; use a plain name such as 'orders'")
    return name


def safe_segment(name: str) -> str:
    """Map a name discovered from a source catalog to a safe folder name.

    Discovered names are not the user's typing, so they are mapped, not rejected:
    separators and control characters become ``_`` and dot-only names get a prefix.
    """
    segment = _UNSAFE_CHARACTERS.sub("_", name).strip()
    if segment in {"", ".", ".."} or set(segment) == {"."}:
        segment = "_" + segment.replace(".", "_")
    return segment


def _unsafe_reason(name: str) -> str | None:
    if not name or not name.strip():
        return "is empty"
    if name in {".", ".."} or set(name) == {"."}:
        return "is a relative path marker"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if _UNSAFE_CHARACTERS.search(name):
        return "contains a control character"
    if name in RESERVED_NAMES:
        return "is reserved for hygge's own folders"
    return None
