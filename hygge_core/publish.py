"""Atomic publication of an entity folder.

Every run, full drop or incremental, builds the complete next version of the
entity folder beside the current one, in ``<parent>/.hygge-staging/``:

* full drop: only the new files;
* incremental: hard links to every data file the commit record lists, plus the new files;
* both: hard links to entries that are not hygge's, so publishing leaves them where they are.

The version's commit record, ``_hygge/state.json`` (watermark included), is
written last and fsynced. Publishing is then one ``renameat2(RENAME_EXCHANGE)``:
the two folders trade places, readers see the old version or the new one and
never a mix, and the watermark moves in the same step as the data. On
filesystems that refuse the exchange, two renames are used and the short gap is
healed by ``recover`` (roll forward when a complete new version is waiting).

``recover`` runs under the entity lock at the start of every run and removes
what killed runs left behind, so a crash at any point rolls forward or leaves
no trace.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from hygge_core.errors import EntityBusy, StoreError

STAGING_DIR = ".hygge-staging"
STATE_DIR = "_hygge"
STATE_FILE = "state.json"
_NEW = ".new"
_OLD = ".old"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def staging_root(entity_dir: Path) -> Path:
    return entity_dir.parent / STAGING_DIR


class EntityLock:
    """An exclusive advisory lock per entity folder; released by the kernel if the process dies."""

    def __init__(self, entity_dir: Path, *, label: str) -> None:
        self.path = staging_root(entity_dir) / f"{entity_dir.name}.lock"
        self.label = label
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EntityBusy(
                f"{self.label}: another hygge run is writing this entity right now (lock {self.path}); "
                "it will be retried, or run again when that run ends"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def new_version_dir(entity_dir: Path, run_id: str) -> Path:
    if "." in run_id:
        raise ValueError(f"run id {run_id!r} contains a dot; recover() could not tell whose staging it is")
    return staging_root(entity_dir) / f"{entity_dir.name}.{run_id}{_NEW}"


def start_version(entity_dir: Path, run_id: str, *, carry: Sequence[str], keep: Sequence[str]) -> Path:
    """Create the folder for the next version.

    ``carry``: data files of the current version (relative paths) hard-linked into the new one;
    an incremental run passes the files its commit record lists, a full drop none.
    ``keep``: entries that are not hygge's (files a user put in the entity folder), linked
    into the new version too so that publishing leaves them where they are; they are never
    listed in the new commit record.
    """
    version = new_version_dir(entity_dir, run_id)
    version.mkdir(parents=True)
    try:
        for relative in [*carry, *keep]:
            _link(entity_dir / relative, version / relative)
    except BaseException:
        # No writer exists yet to abort: a half-made copy (disk full while copying) goes now.
        shutil.rmtree(version, ignore_errors=True)
        raise
    return version


def _link(source: Path, target: Path) -> None:
    """Hard-link ``source`` (never following a symlink) to ``target``, copying where linking is refused."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir() and not source.is_symlink():
        target.mkdir(exist_ok=True)
        return
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


def write_commit_record(version: Path, payload: str) -> None:
    """Write ``_hygge/state.json`` durably: temp file, fsync, rename, fsync the folder."""
    state_dir = version / STATE_DIR
    state_dir.mkdir(exist_ok=True)
    temporary = state_dir / (STATE_FILE + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, state_dir / STATE_FILE)
    fsync_dir(state_dir)
    fsync_dir(version)


def publish_version(version: Path, entity_dir: Path) -> None:
    """Make ``version`` the entity folder in one step; the previous version is removed afterwards."""
    if not (version / STATE_DIR / STATE_FILE).is_file():
        raise StoreError(f"refusing to publish {version}: it has no commit record")
    if entity_dir.is_symlink():  # checked when the run started; checked again, a link swapped in since must not be followed
        raise StoreError(f"refusing to publish to {entity_dir}: it is a symbolic link; hygge never writes through a link")
    if entity_dir.exists():
        if exchange(version, entity_dir):
            fsync_dir(entity_dir.parent)
            _retire(version, entity_dir)
            return
        old = version.with_name(version.name.removesuffix(_NEW) + _OLD)
        os.rename(entity_dir, old)
        try:
            os.rename(version, entity_dir)
        except OSError:
            os.rename(old, entity_dir)  # put the previous version back before reporting the failure
            raise
        fsync_dir(entity_dir.parent)
        shutil.rmtree(old, ignore_errors=True)
        return
    entity_dir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(version, entity_dir)
    fsync_dir(entity_dir.parent)


def _retire(previous: Path, entity_dir: Path) -> None:
    """After an exchange ``previous`` holds the old version: rename it out of the ``.new`` namespace, then delete it.

    Best effort: the new version is already published, so a failure here must not
    fail the run (its error would say the destination is unchanged, and it is not).
    Whatever is left is removed by the next run's ``recover``.
    """
    old = previous.with_name(previous.name.removesuffix(_NEW) + _OLD)
    try:
        os.rename(previous, old)
    except OSError:
        old = previous
    shutil.rmtree(old, ignore_errors=True)


def recover(entity_dir: Path) -> list[str]:
    """Clean up after killed runs of this entity (call with the lock held); return what was done."""
    root = staging_root(entity_dir)
    if not root.is_dir():
        return []
    actions: list[str] = []
    leftovers = _leftovers(root, entity_dir)
    olds = [p for p in leftovers if p.name.endswith(_OLD)]
    news = [p for p in leftovers if p.name.endswith(_NEW)]
    if not entity_dir.exists() and olds:
        # Killed between the two renames of the fallback path: finish the publish if the new
        # version is complete, else put the old version back.
        complete = [p for p in news if (p / STATE_DIR / STATE_FILE).is_file()]
        if complete:
            os.rename(complete[-1], entity_dir)
            actions.append(f"rolled forward {complete[-1].name}")
        else:
            os.rename(olds[-1], entity_dir)
            actions.append(f"restored {olds[-1].name}")
        fsync_dir(entity_dir.parent)
    for path in leftovers:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            actions.append(f"removed {path.name}")
    return actions


def _leftovers(root: Path, entity_dir: Path) -> list[Path]:
    """This entity's staged versions, ``<entity>.<run id>.new`` or ``.old``, oldest run first.

    Matched exactly, not by prefix: ``events.`` is also the start of ``events.v2.<run id>.new``,
    which another entity's run (holding another lock) may be writing right now. Run ids contain
    no dot, so whatever lies between the entity name and the suffix must be dot-free.
    """
    prefix = entity_dir.name + "."
    found = []
    for path in root.iterdir():
        for suffix in (_NEW, _OLD):
            if path.name.startswith(prefix) and path.name.endswith(suffix):
                run_id = path.name[len(prefix) : -len(suffix)]
                if run_id and "." not in run_id and path.is_dir() and not path.is_symlink():
                    found.append(path)
    return sorted(found)


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with ``renameat2``; ``False`` when the filesystem cannot."""
    libc = _libc()
    if libc is None:
        return False
    result = libc.renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


_LIBC: ctypes.CDLL | None | bool = False


def _libc() -> ctypes.CDLL | None:
    global _LIBC
    if _LIBC is False:
        try:
            library = ctypes.CDLL(None, use_errno=True)
            library.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            library.renameat2.restype = ctypes.c_int
            _LIBC = library
        except (OSError, AttributeError):
            _LIBC = None
    return _LIBC  # type: ignore[return-value]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
