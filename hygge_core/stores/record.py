"""The commit record is checked before it is trusted, and only what it lists is hygge's.

An incremental run builds the next version from the files the current commit
record (``_hygge/state.json``) lists. If one of them was deleted or changed by
hand, carrying the rest over would silently drop or corrupt rows for good, so
the run stops and says to rebuild the entity with a full drop.

Anything else in the entity folder (a ``notes.txt``, a hidden file, a Parquet
file someone copied in) is not part of the version: it is never listed in a new
commit record, and it is left where it is (reported as a warning).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hygge_core.errors import StoreError
from hygge_core.publish import STATE_DIR
from hygge_core.state import EntityState


def check_listed_files(entity_dir: Path, state: EntityState, *, entity: str) -> None:
    """Every file the commit record lists must exist, as a plain file, with its recorded size."""
    rebuild = (
        f"its rows cannot be carried into the next version; rebuild the entity with a full drop "
        f"(hygge start --full-drop --entity {entity}). The destination is unchanged"
    )
    for relative in state.files:
        path = entity_dir / relative
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise StoreError(
                f"{path} is listed in the commit record {entity_dir / STATE_DIR} but is missing; {rebuild}"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(
                f"{path} is listed in the commit record {entity_dir / STATE_DIR} but is no longer a plain file; {rebuild}"
            )
        recorded = state.sizes.get(relative)
        if recorded is not None and recorded != info.st_size:
            raise StoreError(
                f"{path} has {info.st_size} bytes but the commit record {entity_dir / STATE_DIR} says {recorded}: "
                f"it was changed outside hygge; {rebuild}"
            )


def carried_files(previous: EntityState, *, partition: str | None, entity: str) -> list[str]:
    """The listed files the next version keeps: all of them, or for a partition run all but that partition's.

    A file no partition run tagged (loaded before ``time_partitions`` was set) may hold rows of any
    period, so a partition run cannot tell which of its rows to replace: it stops instead.
    """
    if partition is None:
        return list(previous.files)
    untagged = [name for name in previous.files if name not in previous.file_partitions]
    if untagged:
        shown = ", ".join(untagged[:3]) + (f" and {len(untagged) - 3} more" if len(untagged) > 3 else "")
        raise StoreError(
            f"{entity}: the commit record lists {len(untagged)} file(s) loaded before time_partitions was set ({shown}); "
            "a partition run cannot tell which of their rows to replace. Move the entity's folder aside and load its "
            "partitions again (a Dagster backfill, or hygge start --partition). The destination is unchanged"
        )
    return [name for name in previous.files if previous.file_partitions[name] != partition]


def untracked_entries(entity_dir: Path, state: EntityState) -> list[str]:
    """Entries of the entity folder the commit record does not list (relative paths, folders before their content).

    Folders that only lead to listed files are not reported; links are reported, never followed.
    """
    if not entity_dir.is_dir() or entity_dir.is_symlink():
        return []
    listed = set(state.files)
    leading = {str(parent) for relative in listed for parent in Path(relative).parents if str(parent) != "."}
    found: list[str] = []
    for folder, dirs, files in os.walk(entity_dir, followlinks=False):
        here = Path(folder)
        relative_here = here.relative_to(entity_dir)
        if relative_here == Path("."):
            dirs[:] = [name for name in dirs if name != STATE_DIR]
        for name in sorted(dirs):
            relative = str(relative_here / name)
            if (here / name).is_symlink() or relative not in leading:
                found.append(relative)
        for name in sorted(files):
            relative = str(relative_here / name)
            if relative not in listed:
                found.append(relative)
        dirs[:] = sorted(name for name in dirs if not (here / name).is_symlink())
    return found
