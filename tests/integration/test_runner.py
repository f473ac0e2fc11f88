"""run_project: a bad entity fails alone, whatever kind of error it raises."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

import hygge_core
from hygge_core import Home, HomeConfig


class ExplodingHomeConfig(HomeConfig):
    type: Literal["test_exploding"] = "test_exploding"


class ExplodingHome(Home, type_name="test_exploding", config=ExplodingHomeConfig):
    """Stands in for a bug in a home: raises something that is not a HyggeError."""

    def read(self, previous, run_type):
        yield pa.table({"x": [1]})
        raise RuntimeError("a bug in a home")


def test_unexpected_error_fails_only_its_entity(write_project):
    root = write_project(
        """
        name: mixed
        flows:
          good:
            home: {type: parquet, path: data}
            store: {type: parquet, path: lake}
            entities: [numbers]
          buggy:
            home: {type: test_exploding}
            store: {type: parquet, path: lake/buggy}
        """
    )
    (root / "data" / "numbers").mkdir(parents=True)
    table = pa.table({"n": list(range(10))})
    pq.write_table(table, root / "data" / "numbers" / "part.parquet")

    result = hygge_core.run_project(hygge_core.load_project(root))

    by_key = {entity.key: entity for entity in result.entities}
    assert by_key["good/numbers"].status == "success"
    assert pq.read_table(root / "lake" / "numbers").select(["n"]).equals(table)
    assert by_key["buggy/buggy"].status == "failed"
    assert (
        by_key["buggy/buggy"].error == "unexpected RuntimeError: a bug in a home"
        and by_key["buggy/buggy"].error_type == "RuntimeError"
    )
    assert not (root / "lake" / "buggy" / "buggy").exists()
