"""The ``row_count`` check's reading of what the store read back after its commit (rows added, rows in the table)."""

from __future__ import annotations

from hygge_core.checks import _row_count
from hygge_core.config import RunType
from hygge_core.result import EntityResult
from hygge_core.store import PublishResult


def result(run_type: RunType, *, rows: int, added: int, in_table: int | None) -> EntityResult:
    publish = PublishResult(files=1, bytes=10, rows=added, destination="lake/t", table_rows=in_table)
    return EntityResult("f", "t", run_type, "success", rows=rows, rows_published=added, published=True, publish=publish)


def test_a_full_drop_must_leave_exactly_the_rows_read_in_the_table() -> None:
    check = _row_count(result("full_drop", rows=300, added=300, in_table=450))
    assert not check.passed
    assert check.description == "after the full drop the table holds 450 rows but 300 were read"
    assert check.metadata == {"rows_written": 300, "rows_published": 300, "rows_in_table": 450}


def test_an_append_adds_to_the_table_and_passes() -> None:
    check = _row_count(result("incremental", rows=300, added=300, in_table=900))
    assert check.passed and check.metadata["rows_in_table"] == 900


def test_one_discrepancy_is_reported_once() -> None:
    check = _row_count(result("full_drop", rows=300, added=297, in_table=297))
    assert check.description == "the destination holds 297 rows from this run but 300 were read"


def test_an_unknown_table_size_is_not_judged() -> None:
    check = _row_count(result("full_drop", rows=300, added=300, in_table=None))
    assert check.passed and "rows_in_table" not in check.metadata
