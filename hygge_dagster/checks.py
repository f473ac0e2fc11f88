"""The engine's checks as Dagster asset checks: specs before anything runs, results in the same step.

``hygge_core.checks`` decides what each entity declares and computes every verdict;
this module only translates. Results are emitted only for the check keys the run
selected, as Dagster requires.
"""

from __future__ import annotations

from collections.abc import Collection

from dagster import AssetCheckKey, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from hygge_core.checks import CheckResult, declared_checks
from hygge_core.project import EntityPlan


def check_specs(plan: EntityPlan, asset_key: AssetKey) -> list[AssetCheckSpec]:
    """The checks this entity declares (shown in the UI before anything runs)."""
    return [
        AssetCheckSpec(spec.name, asset=asset_key, blocking=spec.blocking, description=spec.description)
        for spec in declared_checks(plan)
    ]


def check_results(
    checks: Collection[CheckResult], asset_key: AssetKey, selected: Collection[AssetCheckKey]
) -> list[AssetCheckResult]:
    """Dagster results for the selected checks of this asset (Dagster fails a step that omits one)."""
    wanted = {key.name for key in selected if key.asset_key == asset_key}
    return [_dagster_result(check, asset_key) for check in checks if check.name in wanted]


def _dagster_result(check: CheckResult, asset_key: AssetKey) -> AssetCheckResult:
    """Name the asset explicitly: the translator may have changed keys, and a multi-asset step must say which."""
    metadata = {
        key: MetadataValue.json(value) if isinstance(value, (list, dict)) else value for key, value in check.metadata.items()
    }
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=check.name,
        passed=check.passed,
        severity=AssetCheckSeverity(check.severity),
        description=check.description,
        metadata=metadata,
    )
