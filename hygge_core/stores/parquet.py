"""The Parquet store: a folder per entity, published atomically (see ``hygge_core.publish``).

Files are named ``part-<run id>-<n>.parquet`` so names never collide across runs. They
are written in row groups by ``hygge_core.stores.parquet_files``; with ``parallel_files``
above 1 several files are encoded at once, each on its own thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from hygge_core import publish, schema_change
from hygge_core.config import RunType
from hygge_core.errors import StoreError
from hygge_core.log import get_logger
from hygge_core.schema import conform
from hygge_core.state import EntityState
from hygge_core.store import PublishResult, Store, StoreConfig, StoreSession, StoreWriter
from hygge_core.stores import ownership, record
from hygge_core.stores.parquet_files import DictionaryMode, FileLayout, ParquetCompression, ParquetFiles, usable_cores
from hygge_core.templates import FolderPerEntity

if TYPE_CHECKING:
    import polars as pl

log = get_logger("store.parquet")


class ParquetStoreConfig(FolderPerEntity, StoreConfig):
    type: Literal["parquet"] = "parquet"
    path: str = Field(description="folder of the entity; `<path>/<entity>` unless the path contains {entity}")
    compression: ParquetCompression = "zstd"
    compression_level: int | None = Field(default=None, description="codec level; the codec's default when unset")
    # 122,880 rows (DuckDB's row group): on TPC-H sf1 it was 1.2x faster than 1M-row groups at 0.6x the memory
    # (docs/benchmarks.md, "Row group size"); readers prune on finer statistics, and the writer holds less.
    row_group_rows: int = Field(default=122_880, ge=1, description="rows buffered per row group")
    row_group_bytes: int = Field(default=128 * 1024 * 1024, ge=1024, description="bytes buffered per row group")
    file_rows: int = Field(default=10_000_000, ge=1, description="start a new file after this many rows")
    dictionary: DictionaryMode = Field(
        default="strings",
        description="which columns are dictionary-encoded: text and binary ones (default), every column, or none",
    )
    parallel_files: int | Literal["auto"] = Field(
        default=1,
        description=(
            "files written at once, each encoded on its own thread (auto: one per usable core); row groups are dealt "
            "to them in turn, so an entity of N or more row groups gets at least N files and up to N row groups are in "
            "memory instead of one; an entity of one row group still gets one file"
        ),
    )

    @field_validator("parallel_files")
    @classmethod
    def _at_least_one_file(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1 (or auto)")
        return value

    def describe(self) -> str:
        return f"parquet folder {self.path}"

    def owned_location(self) -> str | None:
        return self.path

    def lanes(self) -> int:
        """How many files are written at once: ``parallel_files``, with ``auto`` the cores this process may run on."""
        return usable_cores() if self.parallel_files == "auto" else self.parallel_files

    def layout(self) -> FileLayout:
        return FileLayout(
            compression=self.compression,
            compression_level=self.compression_level,
            dictionary=self.dictionary,
            row_group_rows=self.row_group_rows,
            row_group_bytes=self.row_group_bytes,
            file_rows=self.file_rows,
            lanes=self.lanes(),
        )


class ParquetStore(Store, type_name="parquet", config=ParquetStoreConfig):
    config: ParquetStoreConfig
    scannable = True

    @property
    def entity_dir(self) -> Path:
        return Path(self.config.path)

    @property
    def destination(self) -> str:
        return str(self.entity_dir)

    @property
    def public_uri(self) -> str:
        return self.entity_dir.absolute().as_uri()

    def read_state(self) -> EntityState:
        return read_state(self.entity_dir)

    def definition_state(self) -> EntityState:
        return self.read_state()

    def session(self) -> ParquetSession:
        return ParquetSession(self)

    def check_ownership(self) -> None:
        """The store-side rules of ``hygge_core.stores.ownership``; the entity's lock is not needed for them."""
        ownership.check_destination(self.entity_dir, project_root=self.context.project_root)
        ownership.check_not_symlink(publish.staging_root(self.entity_dir), what="the staging folder")
        ownership.check_owned(self.entity_dir)

    def check(self) -> str:
        self.check_ownership()
        parent = self.entity_dir.parent
        probe_root = parent
        while not probe_root.exists():
            probe_root = probe_root.parent
        if not os.access(probe_root, os.W_OK | os.X_OK):
            raise StoreError(f"{self.context.key}: cannot write under {probe_root}: permission denied")
        return f"can write under {probe_root}"

    def scan(self, state: EntityState) -> pl.LazyFrame | None:
        import polars as pl

        files = [str(self.entity_dir / name) for name in state.files]
        return pl.scan_parquet(files) if files else None


def read_state(entity_dir: Path) -> EntityState:
    state_file = entity_dir / publish.STATE_DIR / publish.STATE_FILE
    try:
        text = state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return EntityState()
    except OSError as exc:
        raise StoreError(
            f"cannot read entity state {state_file}: {exc}; if the file was edited or damaged, move the entity folder "
            f"{entity_dir} aside and run a full drop to rebuild it"
        ) from exc
    return EntityState.from_json(text, where=str(state_file))


class ParquetSession(StoreSession):
    def __init__(self, store: ParquetStore) -> None:
        self.store = store
        entity_dir = store.entity_dir
        self._lock = publish.EntityLock(entity_dir, label=store.context.key)
        store.check_ownership()
        with store_errors(entity_dir, "prepare"):
            self._lock.acquire()
        try:
            with store_errors(entity_dir, "recover"):
                for action in publish.recover(entity_dir):
                    log.info("[%s] recovered a killed run: %s", store.context.key, action)
            ownership.check_owned(entity_dir)  # again: recovery may have put a version back
            self._state = read_state(entity_dir)
        except BaseException:
            self._lock.release()
            raise

    @property
    def state(self) -> EntityState:
        return self._state

    def writer(self, *, run_id: str, run_type: RunType) -> ParquetWriter:
        return ParquetWriter(self.store, run_id=run_id, incremental=run_type == "incremental", previous=self._state)

    def close(self) -> None:
        self._lock.release()


class ParquetWriter(StoreWriter):
    def __init__(self, store: ParquetStore, *, run_id: str, incremental: bool, previous: EntityState) -> None:
        self.config = store.config
        self.entity_dir = store.entity_dir
        self.run_id = run_id
        self.incremental = incremental
        self.partition = store.context.time_window.key if store.context.time_window is not None else None
        self._previous = previous
        # Only what the commit record lists is carried over, and only once it is checked. A partition run
        # carries every file but its own partition's: computed here, under the entity's lock (the session's).
        self._carried = record.carried_files(previous, partition=self.partition, entity=store.context.key) if incremental else []
        if incremental:
            record.check_listed_files(self.entity_dir, previous, entity=store.context.key)
        untracked = record.untracked_entries(self.entity_dir, previous)
        if untracked:
            shown = ", ".join(untracked[:10]) + (f" and {len(untracked) - 10} more" if len(untracked) > 10 else "")
            log.warning(
                "[%s] %s is not part of the entity (not in its commit record %s); left where it is, not loaded: %s",
                store.context.key,
                "an entry" if len(untracked) == 1 else f"{len(untracked)} entries",
                publish.STATE_DIR,
                shown,
            )
        self.entity = store.context.key
        self.schema_policy = store.context.schema_change
        self._version_schema = self._read_version_schema()
        with store_errors(self.entity_dir, "stage"):
            self.version = publish.start_version(self.entity_dir, run_id, carry=self._carried, keep=untracked)
        self.schema: pa.Schema | None = None
        self._files: ParquetFiles | None = None  # opened once the schema is known
        self._new_files: list[Path] = []

    def _read_version_schema(self) -> pa.Schema | None:
        """The published version's schema, which an incremental run's files must share (its first file's)."""
        if not self._carried:
            return None
        first = self.entity_dir / self._carried[0]
        try:
            return pq.read_schema(first)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(
                f"cannot read the schema of {first}, a file of the published version: {exc}; rebuild the entity with a "
                f"full drop (hygge start --full-drop --entity {self.entity}). The destination is unchanged"
            ) from exc

    def _settle(self, source: pa.Schema) -> pa.Schema:
        return schema_change.settle(self._version_schema, source, policy=self.schema_policy, entity=self.entity)

    def _open_files(self, schema: pa.Schema) -> ParquetFiles:
        self.schema = self._settle(schema)
        layout = self.config.layout()
        self._files = ParquetFiles(self.schema, layout, lambda n: self.version / f"part-{self.run_id}-{n:05d}.parquet")
        return self._files

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        files = self._files or self._open_files(data.schema)
        data = conform(data, files.schema)
        with store_errors(self.entity_dir, "write"):
            files.write(data.to_batches() if isinstance(data, pa.Table) else [data])

    def commit(self, state: EntityState, *, schema: pa.Schema | None) -> PublishResult:
        if self._files is None and schema is not None:
            self._open_files(schema)
        with store_errors(self.entity_dir, "write"):
            if self._version_schema is not None and self.schema is not None and not self.schema.equals(self._version_schema):
                self._rewrite_carried()  # schema_change: evolve; one schema per version
            if self._files is not None:
                # An empty full drop still publishes the schema, in one empty file.
                self._new_files = self._files.close(at_least_one=not self.incremental)
        files = [*self._carried, *(str(p.relative_to(self.version)) for p in self._new_files)]
        sizes = {name: (self.version / name).stat().st_size for name in files}
        new_bytes = sum(p.stat().st_size for p in self._new_files)
        # Read back, not counted on the way in: the row_count check reconciles what the files hold.
        with store_errors(self.entity_dir, "read back"):
            new_rows = sum(pq.read_metadata(p).num_rows for p in self._new_files)
            # The footers of the carried files too: what a reader of the published folder sees in all.
            table_rows = new_rows + sum(pq.read_metadata(self.version / name).num_rows for name in self._carried)
        columns = [(f.name, str(f.type)) for f in self.schema] if self.schema is not None else state.columns
        tags = {name: self._previous.file_partitions[name] for name in self._carried if name in self._previous.file_partitions}
        if self.partition is not None:
            tags.update({str(p.relative_to(self.version)): self.partition for p in self._new_files})
        final_state = state.model_copy(update={"files": files, "sizes": sizes, "columns": columns, "file_partitions": tags})
        with store_errors(self.entity_dir, "publish"):
            publish.write_commit_record(self.version, final_state.model_dump_json(indent=2))
            publish.publish_version(self.version, self.entity_dir)
        return PublishResult(
            files=len(self._new_files),
            bytes=new_bytes,
            rows=new_rows,
            destination=str(self.entity_dir),
            table_rows=table_rows,
            uri=self.entity_dir.absolute().as_uri(),
        )

    def _rewrite_carried(self) -> None:
        """Rewrite the version's existing files to the evolved schema, a row group at a time, inside the staged version."""
        assert self.schema is not None
        layout = self.config.layout()
        for relative in self._carried:
            target = self.version / relative
            target.unlink()  # the hard link to the published file, which stays as it is
            source = pq.ParquetFile(self.entity_dir / relative, pre_buffer=False)
            try:
                with layout.open_writer(target, self.schema) as writer:
                    for index in range(source.num_row_groups):
                        writer.write_table(conform(source.read_row_group(index), self.schema))
            finally:
                source.close()
            with open(target, "rb") as handle:
                os.fsync(handle.fileno())

    def abort(self) -> None:
        """Stop every lane, then remove the staged version, also when an interrupt comes while the lanes stop."""
        try:
            if self._files is not None:
                self._files.discard()  # waits for the encoding threads: nothing may write into the version as it goes
        finally:
            shutil.rmtree(self.version, ignore_errors=True)


@contextlib.contextmanager
def store_errors(entity_dir: Path, action: str) -> Iterator[None]:
    """Turn OS errors while writing an entity into ``StoreError`` messages that say what to do."""
    try:
        yield
    except OSError as exc:
        raise _store_error(exc, entity_dir, action) from exc


def _store_error(exc: OSError, entity_dir: Path, action: str) -> StoreError:
    where = exc.filename or entity_dir
    unchanged = "the destination is unchanged"
    if exc.errno == errno.ENOSPC:
        return StoreError(f"disk full: cannot {action} {where}; free space on that filesystem and run again; {unchanged}")
    if exc.errno == errno.EFBIG:
        return StoreError(
            f"file too large: cannot {action} {where} (a filesystem or ulimit file-size limit); lower file_rows; {unchanged}"
        )
    if exc.errno == errno.EROFS:
        return StoreError(
            f"read-only filesystem: cannot {action} {where}; mount it read-write or point store.path elsewhere; {unchanged}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StoreError(f"permission denied: cannot {action} {where}; give this user write access to {entity_dir.parent}")
    return StoreError(f"cannot {action} {where}: {exc.strerror or exc}")
