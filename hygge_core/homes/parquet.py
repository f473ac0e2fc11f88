"""The Parquet home: a file, a folder (recursive, sorted) or a glob, read row group by row group.

Files are opened with ``pre_buffer=False`` and decoded a batch at a time within
each row group, so memory is bounded by the batch size whatever the total size
(and whatever the size of the input's row groups).
Incremental runs read only files not loaded before; the list of loaded files is
committed with the data in the entity's state.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from hygge_core.context import EntityContext
from hygge_core.errors import HomeError, TransientError
from hygge_core.home import DiscoveryContext, Home, HomeConfig
from hygge_core.schema import conform, unify
from hygge_core.state import EntityState, StateUpdate
from hygge_core.templates import FolderPerEntity

_GLOB_CHARACTERS = set("*?[")


class ParquetHomeConfig(FolderPerEntity, HomeConfig):
    type: Literal["parquet"] = "parquet"
    path: str = Field(description="a .parquet file, a folder (read recursively) or a glob; `<path>/<entity>` for listed entities")
    batch_size: int = Field(
        default=100_000,
        ge=1,
        description="rows decoded per batch; batch_size × the flow's queue_size rows are read ahead of the writer",
    )

    def describe(self) -> str:
        return f"parquet {self.path}"

    def local_paths(self) -> list[Path]:
        return [_fixed_prefix(self.path)]

    def lineage_key(self, context: EntityContext) -> tuple[str, ...]:
        """``("files", folder)``: the folder (or file) read, relative to the project when it lies inside it."""
        folder = _fixed_prefix(self.path)
        try:
            shown = folder.relative_to(context.project_root).as_posix()
        except ValueError:
            shown = folder.as_posix()
        return ("files", shown)


class ParquetHome(Home, type_name="parquet", config=ParquetHomeConfig):
    config: ParquetHomeConfig
    watchable = True

    def __init__(self, config: ParquetHomeConfig, context: EntityContext) -> None:
        super().__init__(config, context)
        self._schema: pa.Schema | None = None
        self._loaded: dict[str, dict[str, int]] = {}
        self._rows_in_window = 0

    def read(self, previous: EntityState, run_type: str) -> Iterator[pa.RecordBatch | pa.Table]:
        """Read the files not loaded before, one open file at a time, each checked to be unchanged when done.

        Each file's identity (size, mtime, ctime, inode) is taken before anything is read
        and compared again once the file is read: a file rewritten meanwhile fails the run
        with a ``TransientError`` (nothing is published; a retry reads a consistent file).
        Files are opened one at a time, twice: once for the footers (schema, row count),
        once for the rows, so ten thousand files need one descriptor, not ten thousand.
        """
        files = list_files(self.config.path)
        already = dict(previous.home.get("loaded_files", {})) if run_type == "incremental" else {}
        identities = {path: identity(path) for path in files}
        todo = [path for path in files if already.get(self._relative(path)) != _stamp(identities[path])]
        schemas = []
        self._rows_in_window = 0
        for path in todo:
            with _unchanged_explains_errors(path, identities[path]), _opened(path) as handle:
                schemas.append((str(path), handle.schema_arrow))
                self._rows_in_window += handle.metadata.num_rows
        self._schema = unify(schemas) if schemas else self._previous_schema(files)
        self._loaded = {**already, **{self._relative(path): _stamp(identities[path]) for path in todo}}
        for path in todo:
            with _unchanged_explains_errors(path, identities[path]), _opened(path) as handle:
                for table in _read_file(path, handle, self.config.batch_size):
                    yield conform(table, self._schema)
            check_unchanged(path, identities[path])

    def schema(self) -> pa.Schema | None:
        return self._schema

    def state_update(self) -> StateUpdate:
        return StateUpdate(progress={"loaded_files": self._loaded})

    def source_row_count(self) -> int | None:
        return self._rows_in_window

    @classmethod
    def discover(cls, config: HomeConfig, plan_context: DiscoveryContext) -> list[str]:
        assert isinstance(config, ParquetHomeConfig)
        root = Path(config.path)
        if not root.is_dir():
            raise HomeError(f"{plan_context.where}: cannot discover entities: {root} is not a folder")
        return sorted(
            p.name.removesuffix(".parquet")
            for p in root.iterdir()
            if not _hidden(p.name) and (p.is_dir() or p.suffix == ".parquet")
        )

    def check(self) -> str:
        files = list_files(self.config.path)
        for path in files:
            with _opened(path):
                pass
        return f"{len(files)} readable Parquet file(s) under {self.config.path}"

    def change_token(self) -> str:
        """A digest of every source file's (path, size, mtime) stamp; ``""`` while there are none.

        A missing source folder counts as "no files", not as an error, so a sensor
        requests the entity once files appear.
        """
        try:
            files = list_files(self.config.path)
        except HomeError:
            return ""
        stamps = []
        for path in files:
            try:
                stamps.append((str(path), _stamp(identity(path))))
            except TransientError:  # gone since it was listed
                continue
        return hashlib.sha256(json.dumps(stamps).encode()).hexdigest() if stamps else ""

    def _relative(self, path: Path) -> str:
        """The key of a loaded file: its path relative to the home root, never its bare name.

        For a glob the root is the folder before the first pattern part (``home`` in
        ``home/*/data.parquet``), so two folders' ``data.parquet`` files stay two files.
        """
        return str(path.relative_to(home_root(self.config.path)))

    def _previous_schema(self, files: list[Path]) -> pa.Schema | None:
        if not files:
            return None
        with _opened(files[0]) as handle:
            return handle.schema_arrow


def home_root(location: str) -> Path:
    """The folder a home's files are keyed under: the folder itself, a file's folder, or a glob's fixed prefix."""
    path = Path(location)
    if _GLOB_CHARACTERS & set(location):
        return _fixed_prefix(location)
    return path if path.is_dir() else path.parent


def _fixed_prefix(location: str) -> Path:
    """The path up to its first part with a glob character (the whole path when it has none)."""
    parts = Path(location).parts
    fixed = next((index for index, part in enumerate(parts) if _GLOB_CHARACTERS & set(part)), len(parts))
    return Path(*parts[:fixed])


def list_files(location: str) -> list[Path]:
    """The Parquet files behind a path, folder or glob, in a deterministic order.

    A path that exists is taken literally even when its name holds glob characters:
    entity names are data, so a folder named ``sales*`` never matches ``sales_2024``.
    """
    path = Path(location)
    single = path.with_name(path.name + ".parquet")
    literal = path.exists() or single.is_file()
    if not literal and _GLOB_CHARACTERS & set(location):
        files = sorted(Path(p) for p in glob.glob(location, recursive=True) if Path(p).is_file())
        if not files:
            raise HomeError(f"no files match {location}; check the pattern in home.path")
        return files
    if path.is_file():
        return [path]
    if not path.exists() and single.is_file():
        return [single]  # `<home>/<entity>` for an entity that is one file, as discovery names it
    if not path.exists():
        raise HomeError(f"{location} does not exist; check home.path (relative paths start at the project folder)")
    if not os.access(path, os.R_OK | os.X_OK):
        raise HomeError(f"permission denied: cannot list {location}; give this user read access")
    files = _walk_parquet(path)
    if not files:
        raise HomeError(f"no .parquet files under {location}; an empty folder is treated as a mistake, not as an empty table")
    return files


def _walk_parquet(root: Path) -> list[Path]:
    """Every visible ``.parquet`` file under ``root``, sorted.

    A sub-folder that cannot be listed is an error, never skipped: ``Path.rglob``
    skips it silently, and a full drop would then publish the entity without its rows.
    """

    def refuse(error: OSError) -> None:
        if error.errno in (errno.EACCES, errno.EPERM):
            raise HomeError(f"permission denied: cannot list {error.filename}; give this user read access") from None
        raise HomeError(f"cannot list {error.filename}: {error.strerror or error}") from None

    found: list[Path] = []
    for folder, subfolders, names in os.walk(root, onerror=refuse):
        subfolders[:] = [name for name in subfolders if not _hidden(name)]
        found.extend(Path(folder) / name for name in names if name.endswith(".parquet") and not _hidden(name))
    return sorted(p for p in found if p.is_file())


def _hidden(name: str) -> bool:
    """Names Parquet readers skip: hidden files and folders, and ``_``-prefixed ones such as a store's ``_hygge/``."""
    return name.startswith((".", "_"))


def identity(path: Path) -> FileIdentity:
    """What says a file is the same file with the same bytes, short of reading it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise TransientError(
            f"{path} disappeared while hygge read the entity; nothing was published; re-run once writers are done"
        ) from None
    return FileIdentity(
        size=info.st_size, mtime_ns=info.st_mtime_ns, ctime_ns=info.st_ctime_ns, inode=info.st_ino, device=info.st_dev
    )


def check_unchanged(path: Path, before: FileIdentity) -> None:
    """Fail with a ``TransientError`` if ``path`` is not the file it was before it was read."""
    after = identity(path)
    if after != before:
        raise TransientError(
            f"{path} changed while hygge read it (before: {before.describe()}; after: {after.describe()}), so what was read "
            "may mix two versions of the file; nothing was published. Re-run once the writers of that file are done"
        )


@contextlib.contextmanager
def _unchanged_explains_errors(path: Path, before: FileIdentity) -> Iterator[None]:
    """A file that cannot be decoded may just have been rewritten mid-read: say so (transient), not "corrupt"."""
    try:
        yield
    except HomeError:
        check_unchanged(path, before)
        raise


@dataclass(frozen=True)
class FileIdentity:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    def describe(self) -> str:
        return f"{self.size} bytes, mtime {self.mtime_ns} ns, ctime {self.ctime_ns} ns, inode {self.inode}"


def _stamp(file: FileIdentity) -> dict[str, int]:
    """How ``loaded_files`` remembers a file (size and mtime, as committed states already hold)."""
    return {"size": file.size, "mtime_ns": file.mtime_ns}


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[pq.ParquetFile]:
    """A Parquet file open for the duration of the block only."""
    handle = _open(path)
    try:
        yield handle
    finally:
        handle.close()


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, pre_buffer=False)
    except PermissionError:
        raise HomeError(f"permission denied reading {path}; give this user read access") from None
    except OSError as exc:
        if exc.errno == errno.EACCES:
            raise HomeError(f"permission denied reading {path}; give this user read access") from None
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            raise HomeError(
                f"too many open files: cannot open {path}; raise the limit (ulimit -n) or close other programs"
            ) from None
        raise HomeError(f"{path} is not a readable Parquet file (truncated or corrupt?): {exc}") from None
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise HomeError(f"{path} is not a valid Parquet file (truncated or corrupt?): {exc}") from None


def _read_file(path: Path, handle: pq.ParquetFile, batch_size: int) -> Iterator[pa.Table | pa.RecordBatch]:
    """Yield at most ``batch_size`` rows at a time, one row group after another.

    A row group that fits in one batch is read whole: ``read_row_group`` decodes one
    column at a time, the cheapest way in memory and CPU. A larger one is decoded
    ``batch_size`` rows at a time with ``iter_batches``, so memory follows the batch
    size even when a file has one huge row group. (``iter_batches`` keeps a page of
    every column open at once, about 1 MB per column, which is why it is not used for
    row groups that fit: on 200 columns it doubled peak memory.)
    Batches never span row groups; the store re-buffers them to its own row-group size.
    """
    try:
        for index in range(handle.num_row_groups):
            if handle.metadata.row_group(index).num_rows <= batch_size:
                yield handle.read_row_group(index)
            else:
                yield from handle.iter_batches(batch_size=batch_size, row_groups=[index])
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise HomeError(f"{path} could not be read (corrupt row group?): {exc}") from None
