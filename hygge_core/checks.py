"""Integrity checks, computed by the engine from a run's result and the published data.

The library API, the CLI and Dagster give the same verdicts because they all read
these results: ``run_entity`` evaluates every check the entity declares, and a
failed ERROR-severity check (``row_count``, ``unique_key``) fails the entity's
outcome even though its data was already published. ``hygge_dagster`` only maps
``CheckSpec`` and ``CheckResult`` to Dagster's check objects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hygge_core.project import EntityPlan
    from hygge_core.result import EntityResult
    from hygge_core.state import EntityState
    from hygge_core.store import Store

CheckName = Literal["row_count", "schema_drift", "not_empty", "unique_key"]
Severity = Literal["ERROR", "WARN"]


@dataclass(frozen=True)
class CheckSpec:
    """A check an entity declares before anything runs; ``blocking`` ones stop downstream work in Dagster."""

    name: CheckName
    description: str
    blocking: bool = False


@dataclass(frozen=True)
class CheckResult:
    name: CheckName
    passed: bool
    severity: Severity
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fails_entity(self) -> bool:
        """A failed ERROR check: the load does not reconcile, so the entity's outcome is a failure."""
        return not self.passed and self.severity == "ERROR"

    def message(self) -> str:
        return f"check {self.name} failed: {self.description or 'no detail'}"


def failed_checks_message(checks: Collection[CheckResult], *, published: bool) -> str | None:
    """What a user reads when ERROR checks failed (``None`` when none did), in the library, the CLI and Dagster alike."""
    failing = [check for check in checks if check.fails_entity]
    if not failing:
        return None
    message = "; ".join(check.message() for check in failing)
    return message + " (the data was published; fix the cause and run again)" if published else message


def declared_checks(plan: EntityPlan) -> list[CheckSpec]:
    """The checks this entity declares: the flow's ``checks:`` block, narrowed to what applies to it."""
    enabled = plan.flow_config.checks
    specs = []
    if enabled.row_count:
        specs.append(
            CheckSpec("row_count", "Rows written equal the rows the source reported for the loaded window.", blocking=True)
        )
    if enabled.schema_drift:
        specs.append(CheckSpec("schema_drift", "Written columns and types match the previous load."))
    if enabled.not_empty and plan.run_type == "full_drop":
        specs.append(CheckSpec("not_empty", "A full drop landed at least one row."))
    keys = key_columns(plan)
    if enabled.unique_key and keys and plan.store_class.scannable:
        specs.append(CheckSpec("unique_key", f"Key ({', '.join(keys)}) is unique and never null in the published data."))
    return specs


def evaluate_checks(
    plan: EntityPlan, result: EntityResult, store: Store, names: Collection[CheckName] | None = None
) -> list[CheckResult]:
    """A result for each declared check (of ``names`` when given). A check with nothing to judge passes and says why."""
    wanted = [spec.name for spec in declared_checks(plan) if names is None or spec.name in names]
    results = []
    for name in wanted:
        if name == "row_count":
            results.append(_row_count(result))
        elif name == "schema_drift":
            results.append(_schema_drift(result) if result.published else _nothing_to_judge(name, "nothing published this run"))
        elif name == "not_empty":
            results.append(_not_empty(result))
        else:
            results.append(_unique_key(plan, store))
    return results


def evaluate_published(plan: EntityPlan, names: Collection[CheckName] | None = None) -> list[CheckResult]:
    """A result for each declared check (of ``names``) judged against the published version alone, without a load.

    For a check run on its own (Dagster's "Execute" on a check): the row count is read from
    the lake and reconciled with the last commit's record, the lake's columns with the
    record's schema, and the key's uniqueness by reading the key columns, as after a load.
    Raises ``StoreError`` when the commit record cannot be read.
    """
    store = plan.create_store()
    state = store.read_state()
    wanted = [spec.name for spec in declared_checks(plan) if names is None or spec.name in names]
    if state.is_new:
        return [_nothing_to_judge(name, "nothing published yet: nothing to check") for name in wanted]
    lake = _Lake.read(store, state) if store.scannable else None
    results = []
    for name in wanted:
        if name == "unique_key":
            results.append(_unique_key(plan, store))
        elif lake is None:
            results.append(_nothing_to_judge(name, f"store type {plan.store.type!r} cannot read its data back"))
        elif lake.error is not None:
            severity: Severity = "WARN" if name in ("schema_drift", "not_empty") else "ERROR"
            results.append(CheckResult(name, passed=False, severity=severity, description=lake.error))
        elif name == "row_count":
            results.append(_published_row_count(state, lake.rows))
        elif name == "schema_drift":
            results.append(_published_columns(state, lake.columns))
        else:
            results.append(_not_empty_published(lake.rows))
    return results


@dataclass(frozen=True)
class _Lake:
    """What the published version holds, read once: its row count (footers, the Delta log) and its column names."""

    rows: int = 0
    columns: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def read(cls, store: Store, state: EntityState) -> _Lake:
        import polars as pl

        try:
            frame = store.scan(state)
            if frame is None:
                return cls(error="the commit record lists no data files; run a full drop to rebuild the entity")
            return cls(rows=int(frame.select(pl.len()).collect().item()), columns=tuple(frame.collect_schema().names()))
        except (OSError, pl.exceptions.PolarsError) as error:
            return cls(error=f"cannot read the published data of {store.destination}: {error}")


def _published_row_count(state: EntityState, rows: int) -> CheckResult:
    """The lake holds what the last commit recorded: exactly its rows after a full drop, at least them after an append."""
    recorded = state.rows_last_run
    metadata: dict[str, Any] = {"rows_in_table": rows, "rows_last_run": recorded, "last_run_type": state.run_type}
    if state.run_type == "full_drop":
        problems = [
            f"the table holds {rows:,} rows but the last run, a full drop, wrote {recorded:,}" if rows != recorded else ""
        ]
    else:
        problems = [f"the table holds {rows:,} rows, fewer than the {recorded:,} the last run added" if rows < recorded else ""]
    return _verdict("row_count", "ERROR", problems, metadata)


def _published_columns(state: EntityState, columns: Sequence[str]) -> CheckResult:
    """The lake's columns are the ones the commit record lists (its one schema), in the same order."""
    recorded = [name for name, _ in state.columns]
    missing = [name for name in recorded if name not in columns]
    extra = [name for name in columns if name not in recorded]
    reordered = not missing and not extra and list(columns) != recorded
    problems = [
        f"the commit record lists {', '.join(missing)}, which the data lacks" if missing else "",
        f"the data has {', '.join(extra)}, which the commit record does not list" if extra else "",
        "the columns are in another order than the commit record's" if reordered else "",
    ]
    metadata: dict[str, Any] = {"columns": [f"{name}: {kind}" for name, kind in state.columns]}
    return _verdict("schema_drift", "WARN", problems, metadata, intro="published data and its commit record disagree: ")


def _not_empty_published(rows: int) -> CheckResult:
    passed = rows > 0
    description = None if passed else "the published table holds zero rows"
    return CheckResult("not_empty", passed=passed, severity="WARN", description=description, metadata={"rows": rows})


def key_columns(plan: EntityPlan) -> list[str]:
    """The columns that must be unique together in the published data.

    A full drop holds one row per key. An incremental entity is an append log in which
    an updated row lands again with a later watermark, so there the key is unique
    together with the watermark column: each version of a row exactly once.
    """
    if plan.watermark is None or not plan.watermark.key_columns:
        return []
    keys = list(plan.watermark.key_columns)
    column = plan.watermark.column
    if plan.run_type == "incremental" and column is not None and column not in keys:
        keys.append(column)
    return keys


def _nothing_to_judge(name: CheckName, why: str) -> CheckResult:
    return CheckResult(name, passed=True, severity="WARN", description=why)


def _verdict(
    name: CheckName, severity: Severity, problems: list[str], metadata: dict[str, Any], *, intro: str = "", joiner: str = "; "
) -> CheckResult:
    """Passed when no problem was found; otherwise the problems, joined after ``intro``, are the description."""
    found = [problem for problem in problems if problem]
    description = intro + joiner.join(found) if found else None
    return CheckResult(name, passed=not found, severity=severity, description=description, metadata=metadata)


def _row_count(result: EntityResult) -> CheckResult:
    """Three counts must agree: the source's window, the rows read, and the rows the destination holds from this run.

    The destination's counts are read back after the commit (Parquet footers, the Delta log);
    after a full drop the whole table must hold exactly the rows read.
    """
    problems = []
    if result.rows_published is not None and result.rows_published != result.rows:
        problems.append(f"the destination holds {result.rows_published:,} rows from this run but {result.rows:,} were read")
    if result.source_rows is not None and result.rows != result.source_rows:
        problems.append(f"wrote {result.rows:,} rows but the source reported {result.source_rows:,} for the window")
    table_rows = result.publish.table_rows if result.publish is not None else None
    full_drop_differs = result.run_type == "full_drop" and table_rows not in (None, result.rows, result.rows_published)
    if full_drop_differs and table_rows is not None:  # when it equals rows_published, the first problem says it
        problems.append(f"after the full drop the table holds {table_rows:,} rows but {result.rows:,} were read")
    metadata: dict[str, Any] = {"rows_written": result.rows}
    if result.source_rows is not None:
        metadata["source_rows"] = result.source_rows
    if result.rows_published is not None:
        metadata["rows_published"] = result.rows_published
    if table_rows is not None:
        metadata["rows_in_table"] = table_rows
    if result.source_rows is None and result.rows_published is None:
        return CheckResult(
            "row_count",
            passed=True,
            severity="ERROR",
            description="neither the source nor the destination can count rows cheaply: nothing to reconcile",
        )
    return _verdict("row_count", "ERROR", problems, metadata)


def _not_empty(result: EntityResult) -> CheckResult:
    if result.run_type != "full_drop":
        return _nothing_to_judge("not_empty", "incremental run: no new rows is normal")
    passed = result.rows > 0
    return CheckResult(
        "not_empty",
        passed=passed,
        severity="WARN",
        description=None if passed else "the full drop landed zero rows; the destination is now empty",
        metadata={"rows": result.rows},
    )


def _schema_drift(result: EntityResult) -> CheckResult:
    current = [(item.name, str(item.type)) for item in result.schema] if result.schema is not None else []
    previous = list(result.previous_columns)
    if not previous:
        return _nothing_to_judge("schema_drift", "first load: nothing to compare")
    before, after = dict(previous), dict(current)
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    changed = [f"{name}: {before[name]} -> {after[name]}" for name in after if name in before and before[name] != after[name]]
    problems = [
        f"added {', '.join(added)}" if added else "",
        f"removed {', '.join(removed)}" if removed else "",
        f"changed {'; '.join(changed)}" if changed else "",
    ]
    metadata: dict[str, Any] = {"added": added, "removed": removed, "changed": changed}
    return _verdict("schema_drift", "WARN", problems, metadata, intro="schema changed since the previous load: ")


def _unique_key(plan: EntityPlan, store: Store) -> CheckResult:
    """Scan only the key columns of the published version, lazily, so memory stays small."""
    import polars as pl

    keys = key_columns(plan)
    label = ", ".join(keys)
    frame = store.scan(store.read_state())
    if frame is None:
        return CheckResult("unique_key", passed=True, severity="ERROR", description="no published data: nothing to check")
    try:
        counted = (
            frame.select(keys)
            .select(
                pl.len().alias("rows"),
                pl.struct(keys).n_unique().alias("unique"),
                pl.any_horizontal([pl.col(k).is_null() for k in keys]).sum().alias("null_rows"),
            )
            .collect()
        )
    except pl.exceptions.ColumnNotFoundError as error:
        return CheckResult(
            "unique_key",
            passed=False,
            severity="ERROR",
            description=f"key column(s) {label} not found in the published data ({error}); fix watermark.key",
        )
    rows, unique, null_rows = (int(counted[name][0]) for name in ("rows", "unique", "null_rows"))
    duplicates = rows - unique
    problems = [
        f"{duplicates:,} duplicate key row(s)" if duplicates else "",
        f"{null_rows:,} row(s) with a null key" if null_rows else "",
    ]
    metadata = {"rows": rows, "duplicate_rows": duplicates, "null_key_rows": null_rows}
    return _verdict("unique_key", "ERROR", problems, metadata, intro=f"key ({label}): ", joiner=" and ")
