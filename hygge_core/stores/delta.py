"""The Delta store: one Delta Lake table per entity, on local disk or object storage, one commit per run.

Object storage has no rename, so the Delta transaction log is the publish: a run
is visible only once its commit file lands, and hygge's ``EntityState``
(watermark, home progress) is part of that same commit, in its commit info under
``"hygge"``. The state therefore never disagrees with the data it describes.

The commit needs the final state, but ``write_deltalake`` takes its commit
metadata when it *starts*, before the batches are known. So a run is two steps:

1. **Stage.** Batches are written as Parquet files under ``<table>/hygge-run-<run id>/``.
   Nothing in the real table's log refers to these files, so readers never see them.
   On local disk, full drops and appends of unpartitioned tables are written by
   hygge's own Parquet writer (``hygge_core.stores.parquet_files``: one file per core, at most four,
   encoded at once, snappy like delta-rs, fsynced), their statistics taken from the
   files' footers (``hygge_core.stores.delta_stats``). delta-rs' writer encodes on
   one thread: on the 10M-row benchmark this made the whole run about 1.3x faster
   (docs/benchmarks.md, "Parquet to Delta"). Everything else (object storage,
   partitions, merges, partition windows, new columns, ``target_file_size``) streams,
   through a bounded queue, into a throw-away Delta table in that folder, written by
   delta-rs on its own thread while the home reads on another.
2. **Commit.** Full drops and appends commit the staged files' ``add`` actions to
   the real table in one transaction, with the state: no data is rewritten.
   Merges (a declared key) run one ``MERGE`` from the staged rows, last row per
   key wins, and then drop the staging folder.

Every commit is made with ``max_commit_retries=0`` on the version read at the
start of the run: if anyone else committed in between, this run fails as a
transient error (and is retried) instead of appending on top of a state it never
saw. A run killed before its commit leaves the table at its previous version;
its staging folder is invisible and removed by ``DeltaStore.vacuum`` (or Delta's
own ``VACUUM``).

After the commit the table's log is read back: the rows this commit added and
the rows the whole table now holds (``PublishResult.table_rows``, Dagster's
``dagster/row_count``). Errors and what may be shown of a URI live in
``hygge_core.stores.delta_errors``.

``deltalake`` is imported lazily: ``import hygge_core`` must not need it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, SecretStr, model_validator

from hygge_core.azure_tokens import AzureAuthMode
from hygge_core.config import RunType
from hygge_core.errors import StoreError
from hygge_core.log import get_logger
from hygge_core.schema import conform
from hygge_core.schema_change import ReloadAsFullDrop
from hygge_core.state import EntityState
from hygge_core.store import PublishResult, Store, StoreConfig, StoreSession, StoreWriter
from hygge_core.stores import delta_auth, ownership
from hygge_core.stores.delta_errors import append_only_refused, delta_errors, public_uri, redact
from hygge_core.stores.delta_stats import file_stats
from hygge_core.stores.parquet_files import FileLayout, ParquetFiles, usable_cores
from hygge_core.templates import mentions_entity, substitute_entity
from hygge_core.time_partitions import TimeWindow

if TYPE_CHECKING:
    import polars as pl
    from deltalake import DeltaTable

log = get_logger("store.delta")

STATE_KEY = "hygge"
STAGING_PREFIX = "hygge-run-"
SEQUENCE_COLUMN = "__hygge_seq"
# delta-rs buffers batches ahead of its writer by count, so its memory follows the size of the batches it is
# fed: writing 10M rows of a 10-column table fed 100k-row batches peaked at ~530 MiB, fed 8,192-row slices of
# the same batches at ~400 MiB, at the same speed (docs/benchmarks.md, "Parquet to Delta"). So batches are
# handed to delta-rs as zero-copy slices of at most this many rows.
HANDOFF_ROWS = 8192
# The data files hygge writes itself: snappy, as delta-rs writes them, so every Delta reader takes them;
# the lanes are set per run: one per usable core, at most MAX_LANES (each lane holds a row group in memory
# and starts a file of its own, so a large machine must not multiply either by its core count).
DATA_FILES = FileLayout(compression="snappy")
MAX_LANES = 4
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def data_file_lanes() -> int:
    return min(usable_cores(), MAX_LANES)


def is_uri(path: str) -> bool:
    return bool(_URI.match(path))


class DeltaStoreConfig(StoreConfig):
    type: Literal["delta"] = "delta"
    path: str = Field(
        description="the entity's table: a folder, or s3://, az://, abfss://, gs:// URI; `<path>/<entity>` unless it contains {entity}"
    )
    storage_options: dict[str, SecretStr] = Field(
        default_factory=dict, description="delta-rs object-store options (credentials, endpoint); ${ENV} allowed; never printed"
    )
    partition_by: list[str] = Field(default_factory=list, description="partition columns, set when the table is created")
    merge_keys: list[str] | None = Field(
        default=None, description="incremental runs merge (upsert) on these columns; defaults to watermark.key; [] appends"
    )
    target_file_size: int | None = Field(
        default=None,
        ge=1024 * 1024,
        description="bytes per data file, written by delta-rs; unset: delta-rs' default, or on local disk hygge's own writer (10M rows per file)",
    )
    auth: AzureAuthMode | None = Field(
        default=None,
        description="Azure paths: a bearer token from azure-identity (the modes of SQL Server connections) instead of keys in storage_options",
    )
    tenant_id: str | None = Field(default=None, description="Azure tenant for auth: service_principal")
    client_id: str | None = Field(default=None, description="Azure client id (service_principal, user-assigned managed_identity)")
    client_secret: SecretStr | None = Field(
        default=None, description="Azure client secret for auth: service_principal; use ${ENV_VAR}"
    )

    @model_validator(mode="after")
    def _check_auth(self) -> DeltaStoreConfig:
        problems = delta_auth.auth_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def for_entity(cls, raw: dict[str, Any], entity: str, *, listed: bool) -> dict[str, Any]:
        """``<path>/<entity>`` for listed entities, joined with ``/`` so a URI keeps its ``scheme://``."""
        path = raw.get("path")
        if listed and isinstance(path, str) and not mentions_entity(path):
            raw = {**raw, "path": path.rstrip("/") + "/" + entity}
        return substitute_entity(raw, entity)

    def resolve_paths(self, root: Path) -> DeltaStoreConfig:
        if is_uri(self.path):
            return self
        # normpath, not resolve(): a symlinked table folder must be refused where it is, not followed to its target.
        return self.model_copy(update={"path": os.path.normpath(root / self.path)})

    def describe(self) -> str:
        return f"delta table {public_uri(self.path)}"

    def owned_location(self) -> str | None:
        return self.path


@dataclass(frozen=True)
class DeltaPublishResult(PublishResult):
    """A publish plus the version this run committed and the table's URI as delta-rs is given it."""

    version: int = -1
    table_uri: str = ""

    def details(self) -> dict[str, int | str]:
        return {"delta_version": self.version}


class DeltaStore(Store, type_name="delta", config=DeltaStoreConfig):
    config: DeltaStoreConfig
    scannable = True

    @property
    def table_uri(self) -> str:
        return self.config.path

    @property
    def destination(self) -> str:
        return self.shown_uri

    @property
    def shown_uri(self) -> str:
        """The table's address in messages and metadata: as configured, less any credential written into it."""
        return public_uri(self.table_uri)

    @property
    def public_uri(self) -> str:
        """The table's address for metadata and messages: ``file://`` on local disk, never with credentials."""
        return Path(self.table_uri).absolute().as_uri() if not is_uri(self.table_uri) else public_uri(self.table_uri)

    @property
    def is_local(self) -> bool:
        return not is_uri(self.table_uri) or self.table_uri.startswith("file://")

    @property
    def writes_own_files(self) -> bool:
        """Whether full drops and appends may be written by hygge's Parquet writer (see the module's docstring)."""
        return self.is_local and not self.config.partition_by and not self.config.target_file_size

    def writer_summary(self) -> str:
        """Who writes this table's data files, for ``hygge debug``."""
        if not self.writes_own_files:
            return "data files written by delta-rs"
        lanes = f"hygge's Parquet writer ({data_file_lanes()} files at once)"
        if self.merge_keys:
            return f"full drops written by {lanes}, merges by delta-rs"
        return f"full drops and appends written by {lanes}"

    @property
    def merge_keys(self) -> list[str]:
        if self.config.merge_keys is not None:
            return list(self.config.merge_keys)
        return self.context.watermark.key_columns if self.context.watermark is not None else []

    def storage_options(self) -> dict[str, str]:
        """The options with their secret values, for delta-rs only; with ``auth:``, a fresh bearer token too."""
        options = {key: value.get_secret_value() for key, value in self.config.storage_options.items()}
        return {**options, **delta_auth.token_options(self.config, self.context.key)}

    def secret_options(self) -> dict[str, SecretStr]:
        """Every value that must never be shown: the configured options and the bearer token held now."""
        token = delta_auth.current_token(self.config)
        return {**self.config.storage_options, **({delta_auth.TOKEN_OPTION: SecretStr(token)} if token else {})}

    def redact(self, text: str) -> str:
        return redact(text, self.secret_options())

    def errors(self, action: str) -> delta_errors:
        return delta_errors(key=self.context.key, table_uri=self.table_uri, secrets=self.secret_options, action=action)

    def open_table(self) -> DeltaTable | None:
        """The table at its latest version, or ``None`` when there is none yet."""
        deltalake = import_deltalake(self.context.key)
        with self.errors("open"):
            try:
                return deltalake.DeltaTable(self.table_uri, storage_options=self.storage_options())
            except deltalake.exceptions.TableNotFoundError:
                return None

    def read_state(self) -> EntityState:
        table = self.open_table()
        return EntityState() if table is None else self.state_of(table)

    def state_of(self, table: DeltaTable) -> EntityState:
        """hygge's state from the newest commit that carries it (others' commits, e.g. OPTIMIZE, carry none)."""
        limit = 8
        with self.errors("read the history of"):
            while True:
                history = table.history(limit)
                for commit in history:
                    payload = commit.get(STATE_KEY)
                    if isinstance(payload, dict) and "state" in payload:
                        try:
                            return EntityState.model_validate(payload["state"])
                        except ValueError as exc:
                            raise StoreError(
                                f"{self.context.key}: the hygge state in commit {commit.get('version')} of delta table "
                                f"{self.shown_uri} is not readable ({exc}); run a full drop to rebuild it"
                            ) from None
                if len(history) < limit:
                    return EntityState()
                limit *= 4

    def scan(self, state: EntityState) -> pl.LazyFrame | None:
        """The table's latest version, lazily (``polars.scan_delta`` with the same storage options)."""
        import polars as pl

        if self.open_table() is None:
            return None
        return pl.scan_delta(self.table_uri, storage_options=self.storage_options() or None)

    def table_version(self) -> int | None:
        table = self.open_table()
        return None if table is None else table.version()

    def definition_state(self) -> EntityState | None:
        """Read on local disk only: opening a remote table at definition time costs network round trips per entity."""
        return self.read_state() if self.is_local else None

    def session(self) -> DeltaSession:
        self.check_ownership()
        return DeltaSession(self)

    def check_ownership(self) -> None:
        """On local disk, the folder rules every store follows: no link, no protected folder, no foreign folder."""
        if not self.is_local:
            return  # object storage has no links; the plan check refuses overlapping URIs
        folder = Path(self.table_uri.removeprefix("file://"))
        ownership.check_destination(folder, project_root=self.context.project_root)
        ownership.check_owned(folder, owned=ownership.is_delta_table, marker=ownership.DELTA_LOG_DIR)

    def check(self) -> str:
        """Write and delete a probe object under the table: a real request to the store.

        Uses delta-rs' raw file-system handle: the pyarrow wrapper's output stream
        (``deltalake.fs.DeltaStorageHandler``) hands it a buffer type it rejects.
        """
        import_deltalake(self.context.key)
        from deltalake._internal import DeltaFileSystemHandler

        self.check_ownership()
        if self.is_local:
            with self.errors("create"):
                Path(self.table_uri).mkdir(parents=True, exist_ok=True)
        name = f"{STAGING_PREFIX}probe"
        with self.errors("write a probe object to"):
            handler = DeltaFileSystemHandler(self.table_uri, self.storage_options())
            stream = handler.open_output_stream(f"{name}/probe", None)
            stream.write(b"hygge")
            stream.close()
            handler.delete_dir(name)
        if self.is_local:  # the local file system keeps the emptied folder; leave nothing behind
            shutil.rmtree(Path(self.table_uri) / name, ignore_errors=True)
        return f"can write to {self.shown_uri}; {self.writer_summary()}"

    def vacuum(self, *, retention_hours: int = 168) -> list[str]:
        """Delete data files no version younger than ``retention_hours`` refers to, staging of killed runs included."""
        table = self.open_table()
        if table is None:
            return []
        with self.errors("vacuum"):
            return list(table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False, full=True))

    def remove_staging(self, name: str) -> None:
        """Best effort: a leftover staging folder is invisible to readers and removed by ``vacuum``."""
        try:
            if self.is_local:
                shutil.rmtree(Path(self.table_uri) / name, ignore_errors=True)
                return
            deltalake = import_deltalake(self.context.key)
            deltalake.fs.DeltaStorageHandler(self.table_uri, self.storage_options()).delete_dir(name)
        except Exception as exc:  # noqa: BLE001  (cleanup must never hide the run's own outcome)
            log.warning("[%s] could not remove staging %s/%s: %s", self.context.key, self.shown_uri, name, self.redact(str(exc)))


class DeltaSession(StoreSession):
    """Reads the table once: the state and the version every commit of this run must follow."""

    def __init__(self, store: DeltaStore) -> None:
        self.store = store
        self.table = store.open_table()
        self._state = EntityState() if self.table is None else store.state_of(self.table)

    @property
    def state(self) -> EntityState:
        return self._state

    def writer(self, *, run_id: str, run_type: RunType) -> DeltaWriter:
        return DeltaWriter(self.store, self.table, run_id=run_id, incremental=run_type == "incremental")


_END = object()


class _Pipe:
    """A bounded hand-off of batches from the calling thread to delta-rs' writer thread."""

    def __init__(self, thread_alive: Callable[[], bool], maxsize: int = 1) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._alive = thread_alive

    def put(self, item: Any) -> bool:
        """Hand ``item`` over; ``False`` if the writer thread has ended and will take nothing more."""
        while True:
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                if not self._alive():
                    return False

    def batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class DeltaWriter(StoreWriter):
    def __init__(self, store: DeltaStore, table: DeltaTable | None, *, run_id: str, incremental: bool) -> None:
        self.store = store
        self.table = table
        self.run_id = run_id
        self.incremental = incremental
        self.window = store.context.time_window
        # A partition run replaces its period's rows (one predicate overwrite); merging on a key is for appends.
        self.merge_keys = store.merge_keys if incremental and self.window is None else []
        self.staging = f"{STAGING_PREFIX}{run_id}"
        self.staging_uri = store.table_uri.rstrip("/") + "/" + self.staging
        self.schema: pa.Schema | None = None
        self._staged_schema: pa.Schema | None = None
        self._thread: threading.Thread | None = None
        self._pipe: _Pipe | None = None
        self._files: ParquetFiles | None = None  # when hygge writes the data files itself (see the module's docstring)
        self._error: BaseException | None = None
        self._rows = 0

    # -- staging ---------------------------------------------------------------------------------------------

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        if self.schema is None:
            self._start(data.schema)
        assert self.schema is not None
        data = conform(data, self.schema)
        if self._files is not None:
            with self.store.errors("write"):
                self._files.write(data.to_batches() if isinstance(data, pa.Table) else [data])
            return
        for whole in data.to_batches() if isinstance(data, pa.Table) else [data]:
            for offset in range(0, whole.num_rows, HANDOFF_ROWS):
                self._hand_over(whole.slice(offset, HANDOFF_ROWS))

    def _hand_over(self, batch: pa.RecordBatch) -> None:
        assert self._pipe is not None
        if self.merge_keys:
            import polars as pl

            sequence = pl.int_range(self._rows, self._rows + batch.num_rows, dtype=pl.Int64, eager=True).to_arrow()
            batch = pa.RecordBatch.from_arrays([*batch.columns, sequence], schema=self._staged_schema)
        self._rows += batch.num_rows
        if not self._pipe.put(batch):
            self._raise_staging_error()

    def _start(self, schema: pa.Schema) -> None:
        """Check the schema against the table, then open the staging files, or start delta-rs writing them on its own thread."""
        self.schema = schema
        self._check_schema(schema)
        self._staged_schema = schema.append(pa.field(SEQUENCE_COLUMN, pa.int64(), nullable=False)) if self.merge_keys else schema
        if self._writes_files(schema):
            staging = Path(self.store.table_uri.removeprefix("file://")) / self.staging
            with self.store.errors("write"):
                staging.mkdir(parents=True)
            layout = replace(DATA_FILES, lanes=data_file_lanes())
            self._files = ParquetFiles(schema, layout, lambda n: staging / f"part-{n:05d}-{self.run_id}.snappy.parquet")
            return
        deltalake = import_deltalake(self.store.context.key)
        thread = threading.Thread(
            target=self._stage, args=(deltalake,), name=f"hygge-delta-{self.store.context.key}", daemon=True
        )
        self._thread = thread
        self._pipe = _Pipe(thread.is_alive)
        thread.start()

    def _writes_files(self, schema: pa.Schema) -> bool:
        """Whether hygge writes this run's data files itself: the cases whose commit only adds files."""
        if not self.store.writes_own_files or self.merge_keys:
            return False
        if self.table is None:
            return True
        if self.window is not None:
            return False  # a predicate overwrite reads the staged rows as a table
        known = set(pa.schema(self.table.schema().to_arrow()).names)
        return not (self.incremental and any(name not in known for name in schema.names))  # new columns: _evolve

    def _stage(self, deltalake: Any) -> None:
        assert self._pipe is not None and self._staged_schema is not None
        reader = pa.RecordBatchReader.from_batches(self._staged_schema, self._pipe.batches())
        partition_by = self.store.config.partition_by if not self.merge_keys else None
        try:
            deltalake.write_deltalake(
                self.staging_uri,
                reader,
                mode="error",
                partition_by=partition_by or None,
                storage_options=self.store.storage_options(),
                target_file_size=self.store.config.target_file_size,
            )
        except BaseException as exc:  # noqa: BLE001  (handed to the calling thread, which raises it)
            self._error = exc

    def _finish_staging(self) -> None:
        if self._files is not None:
            with self.store.errors("write"):
                self._files.close(at_least_one=False)
            return
        if self._thread is None or self._pipe is None:
            return
        self._pipe.put(_END)
        self._thread.join()
        self._thread = None
        if self._error is not None:
            self._raise_staging_error()

    def _raise_staging_error(self) -> None:
        if self._thread is not None:
            self._thread.join()
        error = self._error or StoreError(f"{self.store.context.key}: delta-rs stopped taking data for {self.store.shown_uri}")
        with self.store.errors("write"):
            raise error

    # -- schema ----------------------------------------------------------------------------------------------

    def _check_schema(self, schema: pa.Schema) -> None:
        store, key = self.store, self.store.context.key
        for column in [*store.config.partition_by, *self.merge_keys]:
            if column not in schema.names:
                raise StoreError(
                    f"{key}: column {column!r} (partition_by/merge_keys of {store.shown_uri}) is not in the data; columns: {', '.join(schema.names)}"
                )
        if self.table is None:
            return
        configuration = self.table.metadata().configuration
        refused = features_hygge_cannot_honour(configuration, self.table.schema().to_json())
        if refused:
            raise StoreError(
                f"{key}: delta table {store.shown_uri} uses {'; '.join(refused)} (set by another writer); hygge cannot "
                "write to such a table correctly, so nothing was written and the table is unchanged; point store.path "
                "at a new table"
            )
        if configuration.get("delta.appendOnly", "false").lower() == "true" and (not self.incremental or self.merge_keys):
            raise append_only_refused(key, store.table_uri)
        partitioned_by = list(self.table.metadata().partition_columns)
        if not self.incremental and partitioned_by != list(store.config.partition_by):
            raise StoreError(
                f"{key}: delta table {store.shown_uri} is partitioned by {partitioned_by} but partition_by says "
                f"{list(store.config.partition_by)}; Delta cannot change partitioning in place: write to a new path"
            )
        if not self.incremental:
            return
        added, dropped, retyped = schema_changes(self.table, schema)
        if not (added or dropped or retyped):
            return
        changes = "; ".join(
            part
            for part in (
                f"added {', '.join(added)}" if added else "",
                f"dropped {', '.join(dropped)}" if dropped else "",
                f"retyped {', '.join(retyped)}" if retyped else "",
            )
            if part
        )
        policy = store.context.schema_change
        if policy == "full_drop":
            raise ReloadAsFullDrop(f"{key}: schema of delta table {store.shown_uri} changed ({changes}); reloading as full_drop")
        if policy == "evolve" and not (dropped or retyped):
            log.info("[%s] evolving the schema of %s: %s", key, store.shown_uri, changes)
            return
        hint = (
            "evolve only adds columns; a dropped or retyped column needs schema_change: full_drop or a full drop run"
            if policy == "evolve"
            else "set schema_change: evolve (added columns) or full_drop, or run the entity as a full drop"
        )
        raise StoreError(f"{key}: schema of delta table {store.shown_uri} changed ({changes}); the table is unchanged; {hint}")

    # -- commit ----------------------------------------------------------------------------------------------

    def commit(self, state: EntityState, *, schema: pa.Schema | None) -> DeltaPublishResult:
        if self.schema is None and schema is not None:
            self._start(schema)  # an empty run still publishes its schema
        self._finish_staging()
        deltalake = import_deltalake(self.store.context.key)
        properties = deltalake.CommitProperties(
            custom_metadata={STATE_KEY: {"run_id": self.run_id, "state": state.model_dump(mode="json")}},
            max_commit_retries=0,
        )
        if self.window is not None and self.table is not None:
            with self.store.errors("read"):
                self.table.update_incremental()  # partitions other runs committed since this one started are kept
        before = set(_log_files(self.table)) if self.table is not None else set()
        version = self.table.version() + 1 if self.table is not None else 0
        with self.store.errors("commit to"):
            staged = self._staged_log(deltalake) if self.schema is not None else []
            if self.merge_keys and self.schema is not None:
                self._merge(deltalake, properties)
            elif self.window is not None and self.table is not None and self.schema is not None:
                self._replace_partition(deltalake, properties)
            else:
                self._commit_staged(deltalake, properties, staged)
        with self.store.errors("read back"):
            table = self.store.open_table()
            assert table is not None
            if table.version() != version:  # someone committed after this run: read this run's version, not theirs
                table.load_as_version(version)
            files = _log_files(table)
        added = {path: file for path, file in files.items() if path not in before}
        staged_rows = sum(json.loads(add.get("stats") or "{}").get("numRecords", 0) for add in staged)
        added_rows = _total(file.rows for file in added.values())
        return DeltaPublishResult(
            files=len(added),
            bytes=sum(file.size for file in added.values()),
            # From the table's own log after the commit, so the row_count check reconciles against it; a merge
            # rewrites files that hold earlier rows too, so there the staged rows (the rows it took in) count.
            rows=staged_rows if self.merge_keys or added_rows is None else added_rows,
            destination=self.store.shown_uri,
            table_rows=_total(file.rows for file in files.values()),
            uri=self.store.public_uri,
            version=version,
            table_uri=self.store.table_uri,
        )

    def _staged_log(self, deltalake: Any) -> list[dict[str, Any]]:
        """The staging table's ``add`` actions as delta-rs wrote them (paths relative to the staging folder).

        Their ``numRecords`` are the rows this run published (a merge collapses a key
        repeated within the run, but every staged row was taken in).
        """
        if self._files is not None:
            return [self._add_of(path) for path in self._files.files]
        handler = deltalake.fs.DeltaStorageHandler(self.store.table_uri, self.store.storage_options())
        with handler.open_input_stream(f"{self.staging}/_delta_log/{0:020d}.json") as stream:
            lines = stream.read().decode("utf-8").splitlines()
        return [add for line in lines if line.strip() and (add := json.loads(line).get("add")) is not None]

    def _add_of(self, path: Path) -> dict[str, Any]:
        """The ``add`` action of a data file hygge wrote, as delta-rs would log it (path relative to the staging)."""
        assert self.schema is not None
        status = path.stat()
        return {
            "path": path.name,
            "size": status.st_size,
            "partitionValues": {},
            "modificationTime": status.st_mtime_ns // 1_000_000,
            "stats": file_stats(pq.read_metadata(path), self.schema),
        }

    def _staged_adds(self, deltalake: Any, staged: list[dict[str, Any]]) -> list[Any]:
        """The staged files as ``add`` actions of the real table; the staging table's own log is deleted."""
        adds = [
            deltalake.transaction.AddAction(
                path=f"{self.staging}/{add['path']}",
                size=add["size"],
                partition_values=add.get("partitionValues") or {},
                modification_time=add["modificationTime"],
                data_change=True,
                stats=add.get("stats") or "",
            )
            for add in staged
        ]
        if self._files is None:
            deltalake.fs.DeltaStorageHandler(self.store.table_uri, self.store.storage_options()).delete_dir(
                f"{self.staging}/_delta_log"
            )
        return adds

    def _commit_staged(self, deltalake: Any, properties: Any, staged: list[dict[str, Any]]) -> None:
        if self.table is not None and self.incremental and self.schema is not None:
            known = set(pa.schema(self.table.schema().to_arrow()).names)
            if any(name not in known for name in self.schema.names):
                self._evolve(deltalake, properties)
                return
        adds = self._staged_adds(deltalake, staged) if self.schema is not None else []
        mode = "append" if self.incremental else "overwrite"
        schema = self.schema
        if self.table is None:
            assert schema is not None, "a first run always has a schema"
            deltalake.transaction.create_table_with_add_actions(
                self.store.table_uri,
                deltalake.Schema.from_arrow(schema),
                adds,
                mode="error",
                partition_by=self.store.config.partition_by or None,
                storage_options=self.store.storage_options(),
                commit_properties=properties,
            )
            return
        partition_by = list(self.table.metadata().partition_columns)
        schema = schema if schema is not None else pa.schema(self.table.schema().to_arrow())
        self.table.create_write_transaction(
            adds, mode=mode, schema=schema, partition_by=partition_by or None, commit_properties=properties
        )

    def _evolve(self, deltalake: Any, properties: Any) -> None:
        """Append with new columns: the schema change must be in the same commit as the rows, and a commit of
        staged files cannot carry one, so the staged rows are written once more with ``schema_mode="merge"``."""
        assert self.table is not None
        staged = deltalake.DeltaTable(self.staging_uri, storage_options=self.store.storage_options())
        source = deltalake.QueryBuilder().register("staged", staged).execute("SELECT * FROM staged")
        deltalake.write_deltalake(
            self.table,
            source,
            mode="append",
            schema_mode="merge",
            target_file_size=self.store.config.target_file_size,
            commit_properties=properties,
        )
        self.store.remove_staging(self.staging)

    def _replace_partition(self, deltalake: Any, properties: Any) -> None:
        """One commit that removes the period's rows and adds the staged ones: an overwrite with the window as predicate.

        Files holding only other periods' rows are left as they are (a partition run writes files
        of its own period only, so other partitions' files are never rewritten).
        """
        assert self.table is not None and self.schema is not None and self.window is not None
        staged = deltalake.DeltaTable(self.staging_uri, storage_options=self.store.storage_options())
        source = deltalake.QueryBuilder().register("staged", staged).execute("SELECT * FROM staged")
        deltalake.write_deltalake(
            self.table,
            source,
            mode="overwrite",
            predicate=window_predicate(self.window, self.schema),
            schema_mode="merge" if self.store.context.schema_change == "evolve" else None,
            target_file_size=self.store.config.target_file_size,
            commit_properties=properties,
        )
        self.store.remove_staging(self.staging)

    def _merge(self, deltalake: Any, properties: Any) -> None:
        """Upsert this run's rows on the merge keys; the last staged row of a key wins."""
        assert self.schema is not None
        staged = deltalake.DeltaTable(self.staging_uri, storage_options=self.store.storage_options())
        columns = ", ".join(_quote(name) for name in self.schema.names)
        keys = ", ".join(_quote(name) for name in self.merge_keys)
        latest = (
            f"SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {_quote(SEQUENCE_COLUMN)} DESC) "
            f"AS __hygge_rank FROM staged) WHERE __hygge_rank = 1"
        )
        source = deltalake.QueryBuilder().register("staged", staged).execute(latest)
        if self.table is None:
            deltalake.write_deltalake(
                self.store.table_uri,
                source,
                mode="error",
                partition_by=self.store.config.partition_by or None,
                storage_options=self.store.storage_options(),
                target_file_size=self.store.config.target_file_size,
                commit_properties=properties,
            )
        else:
            predicate = " AND ".join(f"target.{_quote(name)} = source.{_quote(name)}" for name in self.merge_keys)
            (
                self.table.merge(
                    source,
                    predicate,
                    source_alias="source",
                    target_alias="target",
                    merge_schema=self.store.context.schema_change == "evolve",
                    commit_properties=properties,
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        self.store.remove_staging(self.staging)

    def abort(self) -> None:
        try:
            if self._files is not None:
                self._files.discard()  # waits for the encoding threads: nothing may write into the staging as it goes
            if self._thread is not None and self._pipe is not None:
                self._pipe.put(StoreError("run aborted"))
                self._thread.join()
                self._thread = None
        finally:
            self.store.remove_staging(self.staging)


def features_hygge_cannot_honour(configuration: dict[str, str], schema_json: str) -> list[str]:
    """Table settings another writer may have set that the files hygge commits would silently break.

    - Column mapping: files are written by column name and such a table reads them by physical
      names, so every value would read back as null (delta-rs 1.6's own appends do the same).
    - CHECK constraints: a commit of staged files is not checked against them, so rows that
      violate one would land.
    - Generated and identity columns: their values must come from the table's expression or
      sequence; hygge would land the source's values unchecked.
    """
    refused = []
    for field in json.loads(schema_json).get("fields", []):
        metadata = field.get("metadata") or {}
        if "delta.generationExpression" in metadata:
            refused.append(f"a generated column ({field['name']} = {metadata['delta.generationExpression']})")
        if any(name.startswith("delta.identity.") for name in metadata):
            refused.append(f"an identity column ({field['name']})")
    mapping = configuration.get("delta.columnMapping.mode", "none")
    if mapping != "none":
        refused.append(f"column mapping (delta.columnMapping.mode = {mapping}, e.g. after a column rename in Spark or Fabric)")
    constraints = sorted(name for name in configuration if name.startswith("delta.constraints."))
    if constraints:
        shown = ", ".join(f"{name.removeprefix('delta.constraints.')}: {configuration[name]}" for name in constraints)
        refused.append(f"CHECK constraints hygge does not enforce ({shown})")
    return refused


def schema_changes(table: DeltaTable, schema: pa.Schema) -> tuple[list[str], list[str], list[str]]:
    """Added, dropped and retyped columns of ``schema`` against the table, compared as Delta types.

    Comparing Delta types, not Arrow ones, means a change Delta cannot see (a timestamp's
    zone name, string vs large_string) is not reported as one.
    """
    from deltalake import Schema

    current = _delta_types(table.schema().to_json())
    incoming = _delta_types(Schema.from_arrow(schema).to_json())
    added = [f"{name} ({kind})" for name, kind in incoming.items() if name not in current]
    dropped = [name for name in current if name not in incoming]
    retyped = [
        f"{name} {current[name]} -> {kind}" for name, kind in incoming.items() if name in current and kind != current[name]
    ]
    return added, dropped, retyped


def _delta_types(schema_json: str) -> dict[str, str]:
    """Column name -> Delta type as text (nested types as their JSON), from a Delta schema's JSON."""
    fields = json.loads(schema_json)["fields"]
    return {
        field["name"]: field["type"] if isinstance(field["type"], str) else json.dumps(field["type"], sort_keys=True)
        for field in fields
    }


@dataclass(frozen=True)
class _LogFile:
    size: int
    rows: int | None
    """``None`` when the log has no row count for the file, or rows of it are deleted through a deletion vector."""


def _log_files(table: DeltaTable) -> dict[str, _LogFile]:
    """The data files of the table's loaded version, as its log describes them."""
    actions = pa.table(table.get_add_actions(flatten=True))
    rows = actions.column("num_records").to_pylist()
    for name in actions.column_names:
        if name.startswith("deletion_vector"):  # written by other engines: numRecords then counts deleted rows too
            deleted = actions.column(name).is_valid().to_pylist()
            rows = [None if gone else count for count, gone in zip(rows, deleted, strict=True)]
    paths, sizes = actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()
    return {path: _LogFile(size, count) for path, size, count in zip(paths, sizes, rows, strict=True)}


def _total(counts: Iterable[int | None]) -> int | None:
    """The sum, or ``None`` when any count is unknown: a partial sum would be a wrong figure, not an estimate."""
    known = list(counts)
    return None if None in known else sum(c for c in known if c is not None)


def window_predicate(window: TimeWindow, schema: pa.Schema) -> str:
    """``start <= column < end`` as delta-rs predicate text, the bounds written for the column's type.

    A date column compares dates, a timestamp without time zone the wall-clock time in the
    partitions' timezone, one with a time zone the instant (in UTC).
    """
    column_type = schema.field(window.column).type if window.column in schema.names else None
    if column_type is not None and pa.types.is_date(column_type):
        lower, upper = window.start.date().isoformat(), window.end.date().isoformat()
    elif column_type is not None and pa.types.is_timestamp(column_type) and column_type.tz is None:
        lower, upper = (moment.replace(tzinfo=None).isoformat() for moment in (window.start, window.end))
    else:
        lower, upper = (moment.astimezone(dt.UTC).isoformat() for moment in (window.start, window.end))
    column = _quote(window.column)
    return f"{column} >= '{lower}' AND {column} < '{upper}'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def import_deltalake(label: str) -> Any:
    """``deltalake`` (with the submodules used here), or a clear error saying which extra to install."""
    try:
        import deltalake
        import deltalake.exceptions
        import deltalake.fs
        import deltalake.transaction
    except ImportError as exc:
        raise StoreError(f"{label}: the delta store needs the deltalake package: pip install 'hygge[delta]' ({exc})") from None
    return deltalake
