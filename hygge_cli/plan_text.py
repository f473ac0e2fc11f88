"""How the CLI describes one entity's plan, the same in ``hygge start --dry-run`` and ``hygge debug``."""

from __future__ import annotations

from hygge_core.project import EntityPlan


def plan_lines(plan: EntityPlan, *, run_type: str | None = None) -> list[str]:
    """The entity, its run type, its partitioning if any, where it reads from and where it lands."""
    lines = [f"  {plan.key}  [{run_type or plan.run_type}]"]
    if plan.time_partitions is not None:
        parts = plan.time_partitions
        lines.append(f"      in {parts.period} partitions of {parts.column} from {parts.start} ({parts.timezone}); one per run")
    lines.append(f"      from {plan.home.describe()}")
    lines.append(f"      to   {plan.store.describe()}")
    return lines
