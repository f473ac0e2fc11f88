"""Asset checks evaluated in the same step as the load, from the engine's result.

Which checks an entity declares depends on its flow's ``checks:`` block (all on by
default) and on the plan: ``not_empty`` only for full drops, ``unique_key`` only
where ``watermark.key`` declares a key (with the watermark column, for incremental
entities) and the store writes Parquet files. Results
are emitted only for the check keys the run selected, as Dagster requires.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from dagster import AssetCheckKey, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from hygge_core.project import EntityPlan
from hygge_core.result import EntityResult
from hygge_dagster import constants as c


def check_specs(plan: EntityPlan, asset_key: AssetKey) -> list[AssetCheckSpec]:
    """The checks this entity declares (shown in the UI before anything runs)."""
    enabled = plan.flow_config.checks
    specs = []
    if enabled.row_count:
        specs.append(
            AssetCheckSpec(
                c.CHECK_ROW_COUNT,
                asset=asset_key,
                blocking=True,
                description="Rows written equal the rows the source reported for the loaded window.",
            )
        )
    if enabled.schema_drift:
        specs.append(AssetCheckSpec(c.CHECK_SCHEMA_DRIFT, asset=asset_key, description="Written columns and types match the previous load."))
    if enabled.not_empty and plan.run_type == "full_drop":
        specs.append(AssetCheckSpec(c.CHECK_NOT_EMPTY, asset=asset_key, description="A full drop landed at least one row."))
    if enabled.unique_key and _key_columns(plan) and plan.store.type == "parquet":
        keys = ", ".join(_key_columns(plan))
        specs.append(AssetCheckSpec(c.CHECK_UNIQUE_KEY, asset=asset_key, description=f"Key ({keys}) is unique and never null in the published data."))
    return specs


def evaluate_checks(
    plan: EntityPlan, result: EntityResult, asset_key: AssetKey, selected: Collection[AssetCheckKey]
) -> list[AssetCheckResult]:
    """A result for every selected check of this asset (Dagster fails a step that omits one).

    A check that has nothing to judge in this run passes and says why in its description.
    """
    wanted = {key.name for key in selected if key.asset_key == asset_key}
    results: list[AssetCheckResult] = []
    if c.CHECK_ROW_COUNT in wanted:
        results.append(row_count_result(result))
    if c.CHECK_SCHEMA_DRIFT in wanted:
        results.append(schema_drift_result(result) if result.published else _nothing_to_judge(c.CHECK_SCHEMA_DRIFT, "nothing published this run"))
    if c.CHECK_NOT_EMPTY in wanted:
        if result.run_type != "full_drop":
            results.append(_nothing_to_judge(c.CHECK_NOT_EMPTY, "incremental run: no new rows is normal"))
        else:
            results.append(
                AssetCheckResult(
                    check_name=c.CHECK_NOT_EMPTY,
                    passed=result.rows > 0,
                    severity=AssetCheckSeverity.WARN,
                    description=None if result.rows > 0 else "the full drop landed zero rows; the destination is now empty",
                    metadata={"rows": result.rows},
                )
            )
    if c.CHECK_UNIQUE_KEY in wanted:
        results.append(unique_key_result(plan))
    return [_for_asset(item, asset_key) for item in results]


def _nothing_to_judge(name: str, why: str) -> AssetCheckResult:
    return AssetCheckResult(check_name=name, passed=True, severity=AssetCheckSeverity.WARN, description=why)


def row_count_result(result: EntityResult) -> AssetCheckResult:
    if result.source_rows is None:
        return AssetCheckResult(
            check_name=c.CHECK_ROW_COUNT, passed=True, description="the source cannot count its rows cheaply: nothing to reconcile"
        )
    passed = result.rows == result.source_rows
    return AssetCheckResult(
        check_name=c.CHECK_ROW_COUNT,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=None if passed else f"wrote {result.rows:,} rows but the source reported {result.source_rows:,} for the window",
        metadata={"rows_written": result.rows, "source_rows": result.source_rows},
    )


def _for_asset(result: AssetCheckResult, asset_key: AssetKey) -> AssetCheckResult:
    """Name the asset explicitly: the translator may have changed keys, and a multi-asset step must say which."""
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=result.check_name,
        passed=result.passed,
        severity=result.severity,
        description=result.description,
        metadata=result.metadata,
    )


def schema_drift_result(result: EntityResult) -> AssetCheckResult:
    current = [(field.name, str(field.type)) for field in result.schema] if result.schema is not None else []
    previous = list(result.previous_columns)
    if not previous:
        return AssetCheckResult(check_name=c.CHECK_SCHEMA_DRIFT, passed=True, severity=AssetCheckSeverity.WARN, description="first load: nothing to compare")
    before, after = dict(previous), dict(current)
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    changed = [f"{name}: {before[name]} -> {after[name]}" for name in after if name in before and before[name] != after[name]]
    passed = not (added or removed or changed)
    parts = [f"added {', '.join(added)}" if added else "", f"removed {', '.join(removed)}" if removed else "", f"changed {'; '.join(changed)}" if changed else ""]
    return AssetCheckResult(
        check_name=c.CHECK_SCHEMA_DRIFT,
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        description=None if passed else "schema changed since the previous load: " + "; ".join(p for p in parts if p),
        metadata={"added": MetadataValue.json(added), "removed": MetadataValue.json(removed), "changed": MetadataValue.json(changed)},
    )


def unique_key_result(plan: EntityPlan) -> AssetCheckResult:
    """Scan only the key columns of the published files, lazily, so memory stays small."""
    import polars as pl

    keys = _key_columns(plan)
    store = plan.create_store()
    state = store.read_state()
    files = [str(Path(store.destination) / name) for name in state.files]
    label = ", ".join(keys)
    if not files:
        return AssetCheckResult(check_name=c.CHECK_UNIQUE_KEY, passed=True, description="no published files: nothing to check")
    try:
        frame = (
            pl.scan_parquet(files)
            .select(keys)
            .select(
                pl.len().alias("rows"),
                pl.struct(keys).n_unique().alias("unique"),
                pl.any_horizontal([pl.col(k).is_null() for k in keys]).sum().alias("null_rows"),
            )
            .collect()
        )
    except pl.exceptions.ColumnNotFoundError as error:
        return AssetCheckResult(
            check_name=c.CHECK_UNIQUE_KEY,
            passed=False,
            description=f"key column(s) {label} not found in the published data ({error}); fix watermark.key",
        )
    rows, unique, null_rows = (int(frame[name][0]) for name in ("rows", "unique", "null_rows"))
    duplicates = rows - unique
    passed = duplicates == 0 and null_rows == 0
    problems = [f"{duplicates:,} duplicate key row(s)" if duplicates else "", f"{null_rows:,} row(s) with a null key" if null_rows else ""]
    return AssetCheckResult(
        check_name=c.CHECK_UNIQUE_KEY,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=None if passed else f"key ({label}): " + " and ".join(p for p in problems if p),
        metadata={"rows": rows, "duplicate_rows": duplicates, "null_key_rows": null_rows},
    )


def _key_columns(plan: EntityPlan) -> list[str]:
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
