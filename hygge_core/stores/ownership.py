"""A store owns only what it created: the rules a folder-based store checks before it writes.

A full drop replaces the entity folder wholesale, so pointing a store at the wrong
folder (the project, a home, ``/etc`` through a symlink) would delete whatever is
there. The rules, checked by every folder-based store before it stages anything:

* the entity folder is never the filesystem root, the user's home, the project
  folder, or a folder that contains one of them;
* no path is resolved through a symlink to decide where to write: the entity
  folder and the staging folder beside it must not be symbolic links (a link
  would send the swap, and the delete of the previous version, to its target);
* an existing entity folder is replaced or changed only if it is hygge's (it holds
  the commit record ``_hygge/state.json``) or it is empty.

Checks that resolve symlinks here only ever *refuse*; they never pick a path to write.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from hygge_core.errors import StoreError
from hygge_core.publish import STATE_DIR, STATE_FILE

_SHOWN = 6
DELTA_LOG_DIR = "_delta_log"


def check_destination(entity_dir: Path, *, project_root: Path | None) -> None:
    """Refuse an entity folder that is, or contains, the root, the user's home or the project folder."""
    resolved = Path(os.path.realpath(entity_dir))
    protected: list[tuple[Path, str]] = [(Path(os.path.realpath(os.sep)), "the filesystem root")]
    home = os.environ.get("HOME")
    if home:
        protected.append((Path(os.path.realpath(home)), f"the user's home folder {home}"))
    if project_root is not None:
        protected.append((Path(os.path.realpath(project_root)), f"the project folder {project_root}"))
    for folder, what in protected:
        if resolved == folder or resolved in folder.parents:
            relation = "is" if resolved == folder else "contains"
            raise StoreError(
                f"refusing to use {entity_dir} as an entity folder: it {relation} {what}, and a full drop "
                "would replace it with the entity's files; point store.path at a folder of its own (for example lake/{entity})"
            )


def check_not_symlink(path: Path, *, what: str) -> None:
    """Refuse ``path`` if it is a symbolic link: hygge would otherwise write, swap or delete at its target."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise StoreError(
            f"refusing to write {what} {path}: it is a symbolic link to {os.readlink(path)}, and hygge never "
            "writes through a link (the swap and the delete of the previous version would land on its target); "
            "point store.path at the real folder"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StoreError(
            f"refusing to write {what} {path}: it exists and is not a folder; move it away or point store.path elsewhere"
        )


def is_hygge_folder(entity_dir: Path) -> bool:
    """True when ``entity_dir`` holds hygge's commit record as a real file (no link on the way)."""
    state_dir = entity_dir / STATE_DIR
    try:
        return stat.S_ISDIR(os.lstat(state_dir).st_mode) and stat.S_ISREG(os.lstat(state_dir / STATE_FILE).st_mode)
    except FileNotFoundError:
        return False


def is_delta_table(entity_dir: Path) -> bool:
    """True when ``entity_dir`` holds a Delta transaction log as a real folder (no link on the way)."""
    try:
        return stat.S_ISDIR(os.lstat(entity_dir / DELTA_LOG_DIR).st_mode)
    except FileNotFoundError:
        return False


def check_owned(
    entity_dir: Path, *, owned: Callable[[Path], bool] = is_hygge_folder, marker: str = f"{STATE_DIR}/{STATE_FILE}"
) -> None:
    """Refuse to replace or change an existing folder that is neither empty nor the store's own.

    ``owned`` tells a folder the store created (``marker`` names what it looks for, for the message):
    the Parquet store's commit record by default, a Delta table's ``_delta_log`` for the Delta store.
    """
    check_not_symlink(entity_dir, what="the entity folder")
    if not entity_dir.exists() or owned(entity_dir):
        return
    names = sorted(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else "") for entry in os.scandir(entity_dir))
    if not names:
        return
    shown = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
    raise StoreError(
        f"refusing to write to {entity_dir}: it is not a hygge entity folder (it has no {marker}) "
        f"and is not empty: it holds {shown}. hygge replaces only folders it created; empty or move that folder, "
        "or point store.path elsewhere. Nothing was changed"
    )
