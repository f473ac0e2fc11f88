"""One schema per published version: what an incremental run does when the source's schema moved.

An incremental run adds files to the published version. If the new files had a
different schema, readers would break (``polars.scan_parquet`` refuses the folder,
``pyarrow.dataset`` silently drops the new column). So the run compares the
source's schema with the version's and follows the entity's ``schema_change:``:

* ``fail`` (default): stop, name every added, dropped and retyped column; nothing is published;
* ``evolve``: a compatible change (added columns, which become nullable; dropped
  columns, kept and null in new rows; integers or floats widened) gives one unified
  schema, and the store rewrites the version's existing files to it inside the
  same atomic publish;
* ``full_drop``: reload the whole entity with the new schema.

Full drops take the new schema as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from hygge_core.errors import StoreError
from hygge_core.schema import widen


class ReloadAsFullDrop(Exception):  # noqa: N818  (a request, not an error: the run starts again as a full drop)
    """Raised by a store writer under ``schema_change: full_drop``; ``run_entity`` reloads the entity."""


@dataclass
class SchemaDiff:
    added: list[pa.Field] = field(default_factory=list)
    dropped: list[pa.Field] = field(default_factory=list)
    retyped: list[tuple[str, pa.DataType, pa.DataType]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.dropped or self.retyped)

    def describe(self) -> str:
        parts = [f"added column {f.name!r} ({f.type})" for f in self.added]
        parts += [f"dropped column {f.name!r} ({f.type})" for f in self.dropped]
        parts += [f"column {name!r} retyped from {old} to {new}" for name, old, new in self.retyped]
        return "; ".join(parts)


def diff(version: pa.Schema, source: pa.Schema) -> SchemaDiff:
    """Columns added, dropped and retyped from the version's schema to the source's (names and types only).

    A column is retyped when the version's type cannot hold the source's as it is.
    """
    old = {f.name: f for f in version}
    new = {f.name: f for f in source}
    return SchemaDiff(
        added=[f for f in source if f.name not in old],
        dropped=[f for f in version if f.name not in new],
        # A narrower type the version's column holds as it is (int32 rows into an int64 column) is no change.
        retyped=[
            (name, old[name].type, f.type)
            for name, f in new.items()
            if name in old and widen(old[name].type, f.type) != old[name].type
        ],
    )


def settle(version: pa.Schema | None, source: pa.Schema, *, policy: str, entity: str) -> pa.Schema:
    """The schema the next version is written with; raises when the policy refuses the change.

    ``version`` is the published version's schema (``None`` when there is nothing to build on).
    """
    if version is None:
        return source
    change = diff(version, source)
    if not change:
        return version  # same columns and types: new rows take the version's exact schema (order, metadata)
    if policy == "full_drop":
        raise ReloadAsFullDrop(f"{entity}: the source schema changed ({change.describe()})")
    if policy == "evolve":
        return _evolve(version, source, change, entity=entity)
    raise StoreError(
        f"{entity}: the source schema differs from the published version's: {change.describe()}. "
        f"schema_change is 'fail', so nothing was published and the destination is unchanged; set schema_change: evolve "
        f"(add columns, widen types) or schema_change: full_drop (reload the entity), or run a full drop "
        f"(hygge start --full-drop --entity {entity})"
    )


def _evolve(version: pa.Schema, source: pa.Schema, change: SchemaDiff, *, entity: str) -> pa.Schema:
    """The version's schema with widened types, dropped columns made nullable and added columns appended nullable."""
    refused = [(name, old, new) for name, old, new in change.retyped if widen(old, new) is None]
    if refused:
        described = "; ".join(f"column {name!r} from {old} to {new}" for name, old, new in refused)
        raise StoreError(
            f"{entity}: schema_change is 'evolve' but this change is not compatible: {described} (only added columns and "
            f"wider integers or floats are); nothing was published and the destination is unchanged. Set schema_change: "
            f"full_drop, or run a full drop (hygge start --full-drop --entity {entity})"
        )
    new = {f.name: f for f in source}
    dropped = {f.name for f in change.dropped}
    fields = []
    for old_field in version:
        if old_field.name in dropped:
            fields.append(old_field.with_nullable(True))
            continue
        wider = widen(old_field.type, new[old_field.name].type)
        assert wider is not None
        fields.append(old_field.with_type(wider).with_nullable(old_field.nullable or new[old_field.name].nullable))
    fields += [f.with_nullable(True) for f in change.added]
    return pa.schema(fields, metadata=version.metadata)
