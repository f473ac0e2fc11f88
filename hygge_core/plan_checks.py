"""Rules over the whole plan, checked before anything runs (``hygge debug``, ``hygge start``, Dagster's load).

Each entity owns its destination outright (a full drop replaces it), so no two
entities may share one, no destination may lie inside another, and no destination
and no home may lie inside each other: a store inside its home re-reads its own
output, and a home inside a store is deleted by the first full drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

from hygge_core.errors import StoreError
from hygge_core.project import EntityPlan
from hygge_core.stores.ownership import check_destination


def plan_problems(plans: Sequence[EntityPlan]) -> list[str]:
    """One message per overlap, naming both entities and both paths, and per destination a store must never own."""
    problems = []
    destinations = [(plan, location) for plan in plans if (location := plan.store.owned_location()) is not None]
    for plan, location in destinations:
        if "://" not in location:
            try:
                check_destination(Path(location), project_root=plan.project_root)
            except StoreError as error:
                problems.append(f"{plan.key}: {error}")
    for (first, first_at), (second, second_at) in combinations(destinations, 2):
        if _same(first_at, second_at):
            problems.append(f"entities {first.key!r} and {second.key!r} both write to {first_at}; give each its own store.path")
        elif _inside(second_at, first_at) or _inside(first_at, second_at):
            outer, inner = (
                ((first, first_at), (second, second_at))
                if _inside(second_at, first_at)
                else ((second, second_at), (first, first_at))
            )
            problems.append(
                f"entity {inner[0].key!r} writes to {inner[1]}, inside the destination of {outer[0].key!r} ({outer[1]}), "
                f"which a full drop of {outer[0].key!r} would replace; move one of them"
            )
    homes = [(plan, str(path)) for plan in plans for path in plan.home.local_paths()]
    for plan, destination in destinations:
        for reader, home in homes:
            if _same(destination, home) or _inside(destination, home):
                problems.append(
                    f"entity {plan.key!r} writes to {destination}, which {reader.key!r} reads from ({home}): "
                    "hygge would read its own output; put the store outside the home"
                )
            elif _inside(home, destination):
                problems.append(
                    f"entity {reader.key!r} reads from {home}, inside the destination of {plan.key!r} ({destination}), "
                    "which a full drop would replace; move the home out of the store"
                )
    return problems


def _same(first: str, second: str) -> bool:
    return _normal(first) == _normal(second)


def _inside(inner: str, outer: str) -> bool:
    """Whether ``inner`` lies strictly below ``outer`` (folders or URIs, compared by path segment)."""
    outer_normal = _normal(outer).rstrip("/")
    return _normal(inner).startswith(outer_normal + "/")


def _normal(location: str) -> str:
    return location if "://" in location else str(Path(location))
