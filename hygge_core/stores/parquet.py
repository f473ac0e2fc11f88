"""The Parquet store: a folder per entity, published atomically (see ``hygge_core.publish``).

Batches are buffered to a row-group target (about 1M rows or 128 MB) before they
are written, because one row group per small batch makes files 25–35% larger.
Files are named ``part-<run id>-<n>.parquet`` so names never collide across runs.
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
from pydantic import Field

from hygge_core import publish, schema_change
from hygge_core.config import RunType
from hygge_core.errors import StoreError
from hygge_core.log import get_logger
from hygge_core.schema import conform
from hygge_core.state import EntityState
from hygge_core.store import PublishResult, Store, StoreConfig, StoreSession, StoreWriter
from hygge_core.stores import ownership, record
from hygge_core.templates import FolderPerEntity

if TYPE_CHECKING:
    import polars as pl

log = get_logger("store.parquet")


class ParquetStoreConfig(FolderPerEntity, StoreConfig):
    type: Literal["parquet"] = "parquet"
    path: str = Field(description="folder of the entity; `<path>/<entity>` unless the path contains {entity}")
    compression: Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"] = "zstd"
    compression_level: int | None = Field(default=None, description="codec level; the codec's default when unset")
    row_group_rows: int = Field(default=1_000_000, ge=1, description="rows buffered per row group")
    row_group_bytes: int = Field(default=128 * 1024 * 1024, ge=1024, description="bytes buffered per row group")
    file_rows: int = Field(default=10_000_000, ge=1, description="start a new file after this many rows")
    dictionary: Literal["strings", "all", "none"] = Field(
        default="strings",
        description="which columns are dictionary-encoded: text and binary ones (default), every column, or none",
    )

    def describe(self) -> str:
        return f"parquet folder {self.path}"

    def owned_location(self) -> str | None:
        return self.path


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
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
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

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        if self.schema is None:
            self.schema = self._settle(data.schema)
        data = conform(data, self.schema)
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            if batch.num_rows == 0:
                continue
            self._buffer.append(batch)
            self._buffered_rows += batch.num_rows
            self._buffered_bytes += batch.nbytes
        if self._buffered_rows >= self.config.row_group_rows or self._buffered_bytes >= self.config.row_group_bytes:
            self._flush(final=False)

    def commit(self, state: EntityState, *, schema: pa.Schema | None) -> PublishResult:
        if self.schema is None and schema is not None:
            self.schema = self._settle(schema)
        with store_errors(self.entity_dir, "write"):
            if self._version_schema is not None and self.schema is not None and not self.schema.equals(self._version_schema):
                self._rewrite_carried()  # schema_change: evolve; one schema per version
            self._flush(final=True)
            if self._writer is None and not self._new_files and not self.incremental and self.schema is not None:
                self._open_file()  # an empty full drop still publishes the schema
            self._close_file()
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
        compression = None if self.config.compression == "none" else self.config.compression
        for relative in self._carried:
            target = self.version / relative
            target.unlink()  # the hard link to the published file, which stays as it is
            source = pq.ParquetFile(self.entity_dir / relative, pre_buffer=False)
            try:
                with pq.ParquetWriter(
                    target,
                    self.schema,
                    compression=compression,
                    compression_level=self.config.compression_level,
                    use_dictionary=dictionary_columns(self.schema, self.config.dictionary),
                ) as writer:
                    for index in range(source.num_row_groups):
                        writer.write_table(conform(source.read_row_group(index), self.schema))
            finally:
                source.close()
            with open(target, "rb") as handle:
                os.fsync(handle.fileno())

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # the run already failed; cleanup must go on
                self._writer.close()
            self._writer = None
        shutil.rmtree(self.version, ignore_errors=True)

    def _flush(self, *, final: bool) -> None:
        """Write full row groups from the buffer; with ``final``, write whatever is left too.

        A row group is ``row_group_rows`` rows (fewer when ``row_group_bytes`` is reached
        first, or a file ends at ``file_rows``); rows beyond it stay buffered for the
        next one, so input batch sizes never leak into the output layout. Slicing and
        ``from_batches`` are zero-copy: the only copy is the encoder's.
        """
        target = self.config.row_group_rows
        with store_errors(self.entity_dir, "write"):
            while self._buffer and (
                final or self._buffered_rows >= target or self._buffered_bytes >= self.config.row_group_bytes
            ):
                if self._writer is None:
                    self._open_file()
                assert self._writer is not None
                take = min(target, self.config.file_rows - self._file_rows, self._buffered_rows)
                table = pa.Table.from_batches(self._buffer, schema=self.schema)
                self._writer.write_table(table.slice(0, take), row_group_size=take)
                self._file_rows += take
                rest = [batch for batch in table.slice(take).to_batches() if batch.num_rows]
                left = self._buffered_rows - take
                self._buffered_bytes = self._buffered_bytes * left // self._buffered_rows if left else 0
                self._buffer, self._buffered_rows = rest, left
                del table
                if self._file_rows >= self.config.file_rows:
                    self._close_file()

    def _open_file(self) -> None:
        path = self.version / f"part-{self.run_id}-{len(self._new_files):05d}.parquet"
        compression = None if self.config.compression == "none" else self.config.compression
        assert self.schema is not None
        self._writer = pq.ParquetWriter(
            path,
            self.schema,
            compression=compression,
            compression_level=self.config.compression_level,
            use_dictionary=dictionary_columns(self.schema, self.config.dictionary),
        )
        self._new_files.append(path)
        self._file_rows = 0

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        with open(self._new_files[-1], "rb") as handle:
            os.fsync(handle.fileno())


def dictionary_columns(schema: pa.Schema, mode: str) -> bool | list[str]:
    """The columns to dictionary-encode, as ``ParquetWriter(use_dictionary=...)`` takes them.

    Dictionary encoding pays off for repeated text; on numbers and timestamps
    (mostly high-cardinality) it costs hashing every value and then falls back to
    plain pages anyway. On the benchmark's mixed table, text-only dictionaries cut
    encoding CPU by about a fifth and made the file 8% smaller than pyarrow's
    dictionary-everything default (docs/benchmarks.md).
    """
    if mode == "all":
        return True
    if mode == "none":
        return False
    return [
        field.name
        for field in schema
        if pa.types.is_string(field.type)
        or pa.types.is_large_string(field.type)
        or pa.types.is_string_view(field.type)
        or pa.types.is_binary(field.type)
        or pa.types.is_large_binary(field.type)
        or pa.types.is_binary_view(field.type)
        or pa.types.is_dictionary(field.type)
    ]


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
