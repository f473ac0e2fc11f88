"""Parquet → Parquet edge cases: every test reads the published entity back and compares its content.

Sizes (0 rows to 100k, 2 to 1,000 columns), every common Arrow type with nulls,
many small files, schema unification across files, and the store's output layout
(row groups, files, codecs). A broken implementation that drops, reorders,
retypes or duplicates anything fails here, not just one that miscounts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hygge_core import EntityResult, HomeError, load_project, run_entity
from hygge_core.flow import _pump


def copy_project(write_project, *, home: str = "", store: str = "") -> Path:
    """A project with one entity ``copy/copy``: ``src`` (file, folder or glob) → ``lake/copy``.

    ``home`` and ``store`` are extra flow-mapping entries, e.g. ``", batch_size: 7000"``.
    """
    return write_project(
        f"""
        name: edge
        flows:
          copy:
            home: {{type: parquet, path: src{home}}}
            store: {{type: parquet, path: lake/copy{store}}}
        """
    )


def run_copy(root: Path) -> EntityResult:
    return run_entity(load_project(root).entity("copy/copy"))


def data_files(entity_dir: Path) -> list[Path]:
    return sorted(p for p in entity_dir.rglob("*.parquet") if "_hygge" not in p.relative_to(entity_dir).parts)


def read_entity(entity_dir: Path) -> pa.Table:
    """The published rows in file order, exactly as a Parquet reader sees them."""
    return pa.concat_tables([pq.read_table(p) for p in data_files(entity_dir)])


def sample_table(rows: int) -> pa.Table:
    ids = list(range(rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": [f"name-{i}" if i % 7 else None for i in ids],
            "amount": pa.array([Decimal(i * 37 % 100_000) / 100 if i % 5 else None for i in ids], pa.decimal128(12, 2)),
            "at": pa.array([dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i) for i in ids], pa.timestamp("us")),
        }
    )


@pytest.mark.parametrize("rows", [0, 1, 100, 100_000])
def test_sizes_round_trip_exactly(write_project, rows):
    root = copy_project(write_project)
    source = sample_table(rows)
    pq.write_table(source, root / "src", row_group_size=30_000)

    result = run_copy(root)

    written = read_entity(root / "lake" / "copy")
    assert written.schema == source.schema
    assert written.equals(source)
    assert result.rows == rows and result.source_rows == rows
    state = json.loads((root / "lake" / "copy" / "_hygge" / "state.json").read_text())
    assert state["rows_last_run"] == rows
    assert state["columns"] == [[f.name, str(f.type)] for f in source.schema]


def test_zero_row_entity_still_publishes_its_schema(write_project):
    root = copy_project(write_project)
    pq.write_table(sample_table(0), root / "src")

    run_copy(root)

    (only,) = data_files(root / "lake" / "copy")
    assert pq.ParquetFile(only).metadata.num_rows == 0
    assert pq.read_schema(only).names == ["id", "name", "amount", "at"]


def test_thousand_column_table(write_project):
    root = copy_project(write_project)
    columns = {}
    for i in range(1_000):
        if i % 3 == 0:
            columns[f"c{i:04d}"] = pa.array([r * i if r % 4 else None for r in range(50)], pa.int64())
        elif i % 3 == 1:
            columns[f"c{i:04d}"] = pa.array([f"{i}:{r}" if r % 5 else None for r in range(50)], pa.string())
        else:
            columns[f"c{i:04d}"] = pa.array([r / (i + 1) if r % 6 else None for r in range(50)], pa.float64())
    source = pa.table(columns)
    pq.write_table(source, root / "src", row_group_size=20)

    run_copy(root)

    written = read_entity(root / "lake" / "copy")
    assert written.schema == source.schema
    assert written.equals(source)


def test_two_column_table(write_project):
    root = copy_project(write_project)
    source = pa.table({"k": pa.array(range(1_000), pa.int32()), "v": [str(i)[::-1] for i in range(1_000)]})
    pq.write_table(source, root / "src", row_group_size=300)

    run_copy(root)

    assert read_entity(root / "lake" / "copy").equals(source)


def every_type_table() -> pa.Table:
    """One column per common Arrow type; every column holds nulls, extremes and ordinary values."""
    copenhagen = "Europe/Copenhagen"
    moment = dt.datetime(2024, 3, 31, 1, 59, 59, 123456)
    columns: dict[str, pa.Array] = {
        "i8": pa.array([-128, None, 127, 0], pa.int8()),
        "i16": pa.array([-32768, 32767, None, 1], pa.int16()),
        "i32": pa.array([None, -(2**31), 2**31 - 1, 7], pa.int32()),
        "i64": pa.array([-(2**63), None, 2**63 - 1, 42], pa.int64()),
        "u8": pa.array([0, 255, None, 1], pa.uint8()),
        "u16": pa.array([0, None, 65535, 2], pa.uint16()),
        "u32": pa.array([None, 0, 2**32 - 1, 3], pa.uint32()),
        "u64": pa.array([0, 2**64 - 1, 12345678901234567890, None], pa.uint64()),
        "f32": pa.array([1.5, None, -3.25e38, float("inf")], pa.float32()),
        "f64": pa.array([None, 1e-308, -0.0, 2.0**60 + 0.5], pa.float64()),
        "dec38_10": pa.array(
            [Decimal("1234567890123456789012345678.0123456789"), Decimal("-0.0000000001"), None, Decimal("0E-10")],
            pa.decimal128(38, 10),
        ),
        "dec9_2": pa.array([Decimal("9999999.99"), None, Decimal("-0.01"), Decimal("0.00")], pa.decimal128(9, 2)),
        "text": pa.array(["", None, "æøå ✓ 漢字", "x" * 1_000], pa.string()),
        "large_text": pa.array([None, "large", "", "ünïcödé"], pa.large_string()),
        "bytes": pa.array([b"\x00\xff", None, b"", b"abc"], pa.binary()),
        "large_bytes": pa.array([b"", b"\x00" * 300, None, b"z"], pa.large_binary()),
        "flag": pa.array([True, False, None, True], pa.bool_()),
        "day": pa.array([dt.date(1, 1, 1), None, dt.date(9999, 12, 31), dt.date(2024, 2, 29)], pa.date32()),
        "clock_us": pa.array([dt.time(0, 0), dt.time(23, 59, 59, 999999), None, dt.time(12, 0, 0, 1)], pa.time64("us")),
        "clock_ms": pa.array([dt.time(1, 2, 3, 4000), None, dt.time(0, 0), dt.time(23, 59, 59, 999000)], pa.time32("ms")),
        "ts_s": pa.array(
            [moment.replace(microsecond=0), None, dt.datetime(1970, 1, 1), dt.datetime(2262, 1, 1)], pa.timestamp("s")
        ),
        "ts_ms": pa.array(
            [None, moment.replace(microsecond=123000), dt.datetime(1900, 1, 1), dt.datetime(2000, 1, 1)], pa.timestamp("ms")
        ),
        "ts_us": pa.array([moment, dt.datetime(1, 1, 1), None, dt.datetime(9999, 12, 31, 23, 59, 59)], pa.timestamp("us")),
        "ts_ns": pa.array([1, None, -1, 1_700_000_000_123_456_789], pa.timestamp("ns")),
        "ts_us_utc": pa.array([moment, None, dt.datetime(2000, 1, 1), moment], pa.timestamp("us", tz="UTC")),
        "ts_ns_cph": pa.array([None, 1_711_846_799_000_000_001, 0, 5], pa.timestamp("ns", tz=copenhagen)),
        "ts_ms_offset": pa.array([0, 86_400_000, None, 1], pa.timestamp("ms", tz="+05:30")),
        "ints": pa.array([[1, None, 3], [], None, [2**62]], pa.list_(pa.int64())),
        "texts": pa.array([["a", None], None, [], ["", "ø"]], pa.list_(pa.string())),
        "record": pa.array(
            [{"a": 1, "b": "x", "c": [1.5]}, None, {"a": None, "b": None, "c": None}, {"a": -1, "b": "", "c": []}],
            pa.struct([("a", pa.int32()), ("b", pa.string()), ("c", pa.list_(pa.float64()))]),
        ),
    }
    base = pa.table(columns)
    # Repeat the four rows (shifted so row groups differ) to cross several input row groups.
    return pa.concat_tables([base.slice(i % 4) for i in range(25)]).combine_chunks()


def test_every_common_arrow_type_with_nulls_round_trips_with_the_exact_schema(write_project):
    root = copy_project(write_project)
    original = every_type_table()
    assert all(original.column(name).null_count > 0 for name in original.column_names)
    pq.write_table(original, root / "src", row_group_size=17)
    # The source as any reader sees it. Parquet has no seconds unit, so timestamp[s] is stored
    # (and read back) as timestamp[ms]; every other type comes back exactly as written.
    source = pq.read_table(root / "src")
    assert source.schema.field("ts_s").type == pa.timestamp("ms")
    assert [f for f in source.schema if f.name != "ts_s"] == [f for f in original.schema if f.name != "ts_s"]

    result = run_copy(root)

    written = read_entity(root / "lake" / "copy")
    for expected, actual in zip(source.schema, written.schema, strict=True):
        assert (actual.name, actual.type, actual.nullable) == (expected.name, expected.type, expected.nullable)
    assert written.equals(source)
    assert written.drop_columns(["ts_s"]).equals(original.drop_columns(["ts_s"]))
    assert result.schema is not None and result.schema.equals(source.schema)


def test_not_null_columns_stay_not_null(write_project):
    root = copy_project(write_project)
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("note", pa.string())])
    source = pa.table({"id": list(range(10)), "note": [None, "a"] * 5}, schema=schema)
    pq.write_table(source, root / "src")

    run_copy(root)

    written = read_entity(root / "lake" / "copy")
    assert written.schema.field("id").nullable is False
    assert written.equals(source)


def test_many_small_files_become_one_file_of_one_row_group_in_path_order(write_project):
    root = copy_project(write_project)
    parts = []
    for i in range(200):
        part = pa.table({"id": pa.array(range(i * 50, i * 50 + 50), pa.int64()), "file": [f"f{i:03d}"] * 50})
        folder = root / "src" / ("early" if i < 100 else "late")  # recursive, in sorted path order
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, folder / f"f{i:03d}.parquet")
        parts.append(part)

    result = run_copy(root)

    (only,) = data_files(root / "lake" / "copy")
    assert pq.ParquetFile(only).metadata.num_row_groups == 1
    assert read_entity(root / "lake" / "copy").equals(pa.concat_tables(parts))
    assert result.rows == 10_000


def test_compatible_schemas_are_unified_missing_columns_are_null_and_ints_widen(write_project):
    root = copy_project(write_project)
    (root / "src").mkdir()
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32()), "name": ["a", "b"]}), root / "src" / "a.parquet")
    pq.write_table(
        pa.table({"id": pa.array([3, 2**40], pa.int64()), "name": ["c", None], "score": pa.array([0.5, None], pa.float32())}),
        root / "src" / "b.parquet",
    )
    pq.write_table(pa.table({"name": ["e"], "id": pa.array([5], pa.int16())}), root / "src" / "c.parquet")

    run_copy(root)

    expected = pa.table(
        {
            "id": pa.array([1, 2, 3, 2**40, 5], pa.int64()),
            "name": ["a", "b", "c", None, "e"],
            "score": pa.array([None, None, 0.5, None, None], pa.float32()),
        }
    )
    written = read_entity(root / "lake" / "copy")
    assert written.schema == expected.schema
    assert written.equals(expected)


def test_incompatible_schemas_fail_naming_both_files_and_the_column(write_project):
    root = copy_project(write_project)
    (root / "src").mkdir()
    pq.write_table(pa.table({"id": [1], "code": pa.array([10], pa.int64())}), root / "src" / "first.parquet")
    pq.write_table(pa.table({"id": [2], "code": ["ten"]}), root / "src" / "second.parquet")

    with pytest.raises(HomeError) as caught:
        run_copy(root)

    message = str(caught.value)
    assert "'code'" in message
    assert str(root / "src" / "first.parquet") in message and str(root / "src" / "second.parquet") in message
    assert "int64" in message and "string" in message
    assert not (root / "lake" / "copy").exists()


def test_defaults_buffer_small_input_row_groups_into_one_output_row_group(write_project):
    root = copy_project(write_project)
    source = sample_table(100_000)
    pq.write_table(source, root / "src", row_group_size=10_000)
    assert pq.ParquetFile(root / "src").metadata.num_row_groups == 10

    run_copy(root)

    (only,) = data_files(root / "lake" / "copy")
    assert pq.ParquetFile(only).metadata.num_row_groups == 1
    assert pq.read_table(only).equals(source)


def test_home_batch_size_splits_a_big_row_group_without_changing_the_output(write_project):
    root = copy_project(write_project, home=", batch_size: 7000")
    source = sample_table(100_000)
    pq.write_table(source, root / "src", row_group_size=100_000)

    run_copy(root)

    (only,) = data_files(root / "lake" / "copy")
    assert pq.ParquetFile(only).metadata.num_row_groups == 1
    assert pq.read_table(only).equals(source)


def test_row_group_rows_and_file_rows_are_honoured(write_project):
    root = copy_project(write_project, store=", row_group_rows: 25000, file_rows: 40000")
    source = sample_table(100_000)
    pq.write_table(source, root / "src", row_group_size=10_000)

    result = run_copy(root)

    files = data_files(root / "lake" / "copy")
    layout = [
        [pq.ParquetFile(f).metadata.row_group(i).num_rows for i in range(pq.ParquetFile(f).metadata.num_row_groups)]
        for f in files
    ]
    assert layout == [[25_000, 15_000], [25_000, 15_000], [20_000]]
    assert result.files == 3
    assert read_entity(root / "lake" / "copy").equals(source)


def test_row_group_bytes_caps_a_row_group_before_its_row_target(write_project):
    root = copy_project(write_project, store=", row_group_bytes: 200000")
    source = pa.table({"id": pa.array(range(20_000), pa.int64()), "blob": [f"{i:08d}" * 8 for i in range(20_000)]})
    pq.write_table(source, root / "src", row_group_size=1_000)

    run_copy(root)

    (only,) = data_files(root / "lake" / "copy")
    metadata = pq.ParquetFile(only).metadata
    assert metadata.num_row_groups > 1
    assert all(metadata.row_group(i).num_rows < 20_000 for i in range(metadata.num_row_groups))
    assert pq.read_table(only).equals(source)


def compressible_table() -> pa.Table:
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    return pa.table(
        {
            "id": pa.array(range(20_000), pa.int64()),
            "text": [f"{words[i % 5]} {words[i * 7 % 5]} {i % 977} {words[i // 3 % 5]}" for i in range(20_000)],
            "value": [i * 0.25 for i in range(20_000)],
        }
    )


@pytest.mark.parametrize(
    ("setting", "codec"),
    [("", "ZSTD"), (", compression: snappy", "SNAPPY"), (", compression: gzip", "GZIP"), (", compression: none", "UNCOMPRESSED")],
)
def test_compression_codec_is_written_to_every_column_chunk(write_project, setting, codec):
    root = copy_project(write_project, store=setting)
    source = compressible_table()
    pq.write_table(source, root / "src")

    run_copy(root)

    (only,) = data_files(root / "lake" / "copy")
    metadata = pq.ParquetFile(only).metadata
    assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {codec}
    assert pq.read_table(only).equals(source)


def test_compression_level_is_honoured(write_project, tmp_path):
    sizes = {}
    for level in (1, 19):
        root = copy_project(write_project, store=f", compression: zstd, compression_level: {level}")
        root = root.rename(tmp_path / f"level{level}")
        pq.write_table(compressible_table(), root / "src", compression="none")
        run_copy(root)
        (only,) = data_files(root / "lake" / "copy")
        assert pq.read_table(only).equals(compressible_table())
        sizes[level] = only.stat().st_size
    # Encoding is deterministic: a writer that ignored the level would write identical bytes.
    assert sizes[19] < sizes[1], sizes


@pytest.mark.parametrize(
    ("setting", "dictionary_columns"),
    [("", {"text"}), (", dictionary: all", {"id", "text", "value"}), (", dictionary: none", set())],
)
def test_dictionary_setting_picks_the_dictionary_encoded_columns(write_project, setting, dictionary_columns):
    root = copy_project(write_project, store=setting)
    source = compressible_table()
    pq.write_table(source, root / "src")

    run_copy(root)

    (only,) = data_files(root / "lake" / "copy")
    chunks = pq.ParquetFile(only).metadata.row_group(0)
    encoded = {
        chunks.column(i).path_in_schema for i in range(chunks.num_columns) if "RLE_DICTIONARY" in chunks.column(i).encodings
    }
    assert encoded == dictionary_columns
    assert pq.read_table(only).equals(source)


def test_reader_runs_ahead_of_the_writer_by_at_most_queue_size_batches(write_project):
    """Memory is queue_size × batch_size plus a row group: the reader may not decode one more batch while it waits."""
    root = copy_project(write_project)
    plan = load_project(root).entity("copy/copy")
    produced: list[int] = []
    lead: list[int] = []

    def batches():
        for i in range(40):
            produced.append(i)
            yield pa.record_batch({"i": pa.array([i], pa.int64())})

    class SlowWriter:
        def write(self, batch: pa.RecordBatch) -> None:
            time.sleep(0.005)  # give the reader every chance to race ahead
            lead.append(len(produced) - batch.column(0)[0].as_py() - 1)  # batches made beyond this one

    rows, _ = _pump(batches(), SlowWriter(), None, plan, time.perf_counter(), None, logging.getLogger("test"))

    assert rows == 40
    assert max(lead) == plan.flow_config.queue_size == 4  # it does read ahead (reading overlaps writing), but no further
