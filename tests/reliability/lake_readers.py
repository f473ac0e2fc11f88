"""What a lake reader sees: an entity folder read by ``polars.scan_parquet`` and ``pyarrow.dataset``.

hygge's promise is that every published version has one schema, so both readers
(which treat differing file schemas differently: polars refuses, pyarrow drops
columns) must return exactly the expected rows and columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def assert_one_schema_and_rows(entity_dir: Path, expected: pa.Table, *, sort_by: str = "id") -> None:
    """Every listed file has the same schema, and both readers return exactly ``expected`` (sorted by ``sort_by``)."""
    state = json.loads((entity_dir / "_hygge" / "state.json").read_text(encoding="utf-8"))
    schemas = {name: pq.read_schema(entity_dir / name) for name in state["files"]}
    first = next(iter(schemas.values()))
    for name, schema in schemas.items():
        assert schema.equals(first, check_metadata=False), f"{name} has schema {schema}, not {first}"
    assert state["columns"] == [[f.name, str(f.type)] for f in first]

    expected = expected.sort_by(sort_by)
    via_pyarrow = ds.dataset(entity_dir, format="parquet").to_table().sort_by(sort_by)
    assert via_pyarrow.column_names == expected.column_names
    assert via_pyarrow.cast(expected.schema).equals(expected)

    via_polars = pl.scan_parquet(str(entity_dir / "*.parquet")).sort(sort_by).collect()
    assert via_polars.columns == expected.column_names
    assert via_polars.to_arrow().cast(expected.schema).equals(expected)
