"""The engine's checks as Dagster asset checks: specs before anything runs, results in the same step.

``hygge_core.checks`` decides what each entity declares and computes every verdict;
this module only translates. Results are emitted only for the check keys the run
selected, as Dagster requires. A run that selects checks without their asset (the UI's
"Execute" on a check) gets them judged against the published version, with no load.
"""

from __future__ import annotations

from collections.abc import Collection

from dagster import AssetCheckKey, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, Failure, MetadataValue

from hygge_core.checks import CheckResult, declared_checks, evaluate_published
from hygge_core.errors import HyggeError
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


def published_check_results(plan: EntityPlan, asset_key: AssetKey, selected: Collection[AssetCheckKey]) -> list[AssetCheckResult]:
    """The selected checks of an asset this run does not load, judged against its published version.

    An unreadable commit record fails the step (not retried): no verdict can be given.
    """
    wanted = {key.name for key in selected if key.asset_key == asset_key}
    if not wanted:
        return []
    try:
        checks = evaluate_published(plan, wanted)  # type: ignore[arg-type]  (names Dagster holds are the declared ones)
    except HyggeError as error:
        text = str(error)
        raise Failure(
            description=text if text.startswith(f"{plan.key}: ") else f"{plan.key}: {text}", allow_retries=False
        ) from error
    return [_dagster_result(check, asset_key) for check in checks]


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
