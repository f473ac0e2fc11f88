"""``{entity}`` templates: how a flow-level home or store block becomes one entity's block."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self


def substitute_entity(raw: Any, entity: str) -> Any:
    """Replace ``{entity}`` in every string of a (nested) config block."""
    if isinstance(raw, str):
        return raw.replace("{entity}", entity)
    if isinstance(raw, dict):
        return {key: substitute_entity(value, entity) for key, value in raw.items()}
    if isinstance(raw, list):
        return [substitute_entity(value, entity) for value in raw]
    return raw


def mentions_entity(raw: Any) -> bool:
    if isinstance(raw, str):
        return "{entity}" in raw
    if isinstance(raw, dict):
        return any(mentions_entity(value) for value in raw.values())
    if isinstance(raw, list):
        return any(mentions_entity(value) for value in raw)
    return False


def folder_per_entity(raw: dict[str, Any], entity: str, *, listed: bool, key: str = "path") -> dict[str, Any]:
    """The default mapping for folder-based homes and stores: ``<path>/<entity>`` unless the path says ``{entity}``.

    Only listed (or discovered) entities get a sub-folder; a flow without ``entities:``
    is one entity that reads and writes ``path`` itself.
    """
    if listed and key in raw and not mentions_entity(raw[key]):
        raw = {**raw, key: str(Path(str(raw[key])) / entity)}
    return substitute_entity(raw, entity)


class FolderPerEntity:
    """Behaviour shared by home and store blocks whose ``path`` is a local folder (or file) per entity.

    Mixed into a config model that declares ``path: str``: listed entities get ``<path>/<entity>``,
    and relative paths resolve against the project folder, lexically (``normpath``, never
    ``resolve``: a symlink must be seen, and refused, where it is, not followed).
    """

    path: str

    @classmethod
    def for_entity(cls, raw: dict[str, Any], entity: str, *, listed: bool) -> dict[str, Any]:
        return folder_per_entity(raw, entity, listed=listed)

    def resolve_paths(self, root: Path) -> Self:
        return self.model_copy(update={"path": os.path.normpath(root / self.path)})  # type: ignore[attr-defined]
