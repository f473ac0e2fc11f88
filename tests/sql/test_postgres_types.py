"""Every PostgreSQL type in the map lands in Parquet with its canonical Arrow type and exact values.

The table is read twice, through the native reader (ADBC, the default) and through psqlODBC (``reader: odbc``):
both are compared with the source values and with each other, value by value.
"""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pyarrow.parquet as pq

import hygge_core

TYPES_TABLE = """
create type mood as enum ('sad', 'happy');
create domain positive as integer check (value > 0);
create table every_type (
    id integer primary key,
    c_int2 smallint, c_int4 integer, c_int8 bigint, c_bool boolean,
    c_float4 real, c_float8 double precision,
    c_numeric numeric(18,4), c_numeric38 numeric(38,10), c_numeric_free numeric, c_numeric_wide numeric(50,2),
    c_money money, c_date date, c_time time, c_timestamp timestamp, c_timestamp3 timestamp(3), c_timestamptz timestamptz,
    c_char char(5), c_varchar varchar(40), c_text text, c_uuid uuid, c_bytea bytea,
    c_json jsonb, c_interval interval, c_array integer[], c_oid oid, c_name name, c_timetz timetz, c_inet inet,
    c_enum mood, c_domain positive
);
insert into every_type values
 (1, -32768, -2147483648, -9223372036854775808, false,
  -3.4e38, -1.7976931348623157e308,
  -99999999999999.9999, -9999999999999999999999999999.9999999999, 3.14159265358979323846264338327950288, 123456789012345678901234567890123456789012345678.12,
  -92233720368547758.08, '0001-01-01', '00:00:00', '0001-01-01 00:00:00', '2000-01-01 00:00:00.001', '1970-01-01 00:00:00+00',
  '', '', '', '00000000-0000-0000-0000-000000000000', '\\x',
  '{}', '0 seconds', '{}', 0, '', '00:00:00+00', '0.0.0.0', 'sad', 1),
 (2, 32767, 2147483647, 9223372036854775807, true,
  1.5, 0.1234567890123456789,
  99999999999999.9999, 9999999999999999999999999999.9999999999, -0.000000000000000000000000000001, -1.5,
  92233720368547758.07, '9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999', '2024-02-29 12:34:56.789', '2024-06-01 12:00:00.123456+02',
  'ab', 'héllo wörld ✓', repeat('long text ', 500), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\xdeadbeef00ff',
  '{"a": [1, 2, {"b": null}]}', '1 year 2 mons 3 days 04:05:06', '{1,NULL,3}', 4294967295, 'pg_name', '12:34:56.5-03:30',
  '2001:db8::1/64', 'happy', 2147483647),
 (3, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
  null, null, null, null, null, null, null, null, null, null, null, null, null, null);
"""

EXPECTED_TYPES = {
    "id": pa.int32(),
    "c_int2": pa.int16(),
    "c_int4": pa.int32(),
    "c_int8": pa.int64(),
    "c_bool": pa.bool_(),
    "c_float4": pa.float32(),
    "c_float8": pa.float64(),
    "c_numeric": pa.decimal128(18, 4),
    "c_numeric38": pa.decimal128(38, 10),
    "c_numeric_free": pa.string(),
    "c_numeric_wide": pa.string(),
    "c_money": pa.decimal128(19, 2),
    "c_date": pa.date32(),
    "c_time": pa.time64("us"),
    "c_timestamp": pa.timestamp("us"),
    "c_timestamp3": pa.timestamp("us"),
    "c_timestamptz": pa.timestamp("us", tz="UTC"),
    "c_char": pa.string(),
    "c_varchar": pa.string(),
    "c_text": pa.string(),
    "c_uuid": pa.string(),
    "c_bytea": pa.binary(),
    "c_json": pa.string(),
    "c_interval": pa.string(),
    "c_array": pa.string(),
    "c_oid": pa.int64(),
    "c_name": pa.string(),
    "c_timetz": pa.string(),
    "c_inet": pa.string(),
    "c_enum": pa.string(),
    "c_domain": pa.string(),
}

UTC = dt.UTC
D = decimal.Decimal


def test_every_type_row_by_row_native_and_odbc(pgdb, write_project):
    pgdb.sql(TYPES_TABLE)
    root = write_project(
        "name: types\nconnections:\n"
        + pgdb.connection_yaml(name="pg")
        + pgdb.connection_yaml(name="pg_odbc", extra="    reader: odbc\n")
        + """
flows:
  native:
    home: {type: postgres, connection: pg, table: "public.{entity}"}
    store: {type: parquet, path: "lake/native/{entity}"}
    entities: [every_type]
  odbc:
    home: {type: postgres, connection: pg_odbc, table: "public.{entity}", max_text_size: 10000}
    store: {type: parquet, path: "lake/odbc/{entity}"}
    entities: [every_type]
"""
    )
    project = hygge_core.load_project(root)
    tables = {}
    for flow in ("native", "odbc"):
        result = hygge_core.run_entity(project.entity(f"{flow}/every_type"))
        assert (result.status, result.rows, result.source_rows) == ("success", 3, 3), result.error
        tables[flow] = pq.read_table(root / "lake" / flow / "every_type")
        assert {f.name: f.type for f in tables[flow].schema} == EXPECTED_TYPES, flow
    native_rows, odbc_rows = (sorted(tables[flow].to_pylist(), key=lambda r: r["id"]) for flow in ("native", "odbc"))
    for native_row, odbc_row in zip(native_rows, odbc_rows, strict=True):
        for name in EXPECTED_TYPES:
            assert native_row[name] == odbc_row[name], (native_row["id"], name, native_row[name], odbc_row[name])
    rows = native_rows

    low, high, empty = rows
    assert low == {
        "id": 1,
        "c_int2": -32768,
        "c_int4": -2147483648,
        "c_int8": -9223372036854775808,
        "c_bool": False,
        "c_float4": -3.4e38 if False else low["c_float4"],
        "c_float8": -1.7976931348623157e308,
        "c_numeric": D("-99999999999999.9999"),
        "c_numeric38": D("-9999999999999999999999999999.9999999999"),
        "c_numeric_free": "3.14159265358979323846264338327950288",
        "c_numeric_wide": "123456789012345678901234567890123456789012345678.12",
        "c_money": D("-92233720368547758.08"),
        "c_date": dt.date(1, 1, 1),
        "c_time": dt.time(0, 0),
        "c_timestamp": dt.datetime(1, 1, 1),
        "c_timestamp3": dt.datetime(2000, 1, 1, 0, 0, 0, 1000),
        "c_timestamptz": dt.datetime(1970, 1, 1, tzinfo=UTC),
        "c_char": "     ",
        "c_varchar": "",
        "c_text": "",
        "c_uuid": "00000000-0000-0000-0000-000000000000",
        "c_bytea": b"",
        "c_json": "{}",
        "c_interval": "00:00:00",
        "c_array": "{}",
        "c_oid": 0,
        "c_name": "",
        "c_timetz": "00:00:00+00",
        "c_inet": "0.0.0.0/32",  # text(inet) keeps the mask
        "c_enum": "sad",
        "c_domain": "1",  # a domain is "anything else": its text
    }
    assert abs(low["c_float4"] - -3.4e38) / 3.4e38 < 1e-6  # float4 keeps float4 precision, nothing more
    assert high["c_float8"] == 0.12345678901234568  # all 17 digits: not narrowed to float32 (0.12345679104328156)
    assert high["c_float4"] == 1.5
    assert high["c_numeric"] == D("99999999999999.9999")
    assert high["c_numeric_free"] == "-0.000000000000000000000000000001"
    assert high["c_money"] == D("92233720368547758.07")
    assert high["c_date"] == dt.date(9999, 12, 31)
    assert high["c_time"] == dt.time(23, 59, 59, 999999)
    assert high["c_timestamp"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert high["c_timestamp3"] == dt.datetime(2024, 2, 29, 12, 34, 56, 789000)
    assert high["c_timestamptz"] == dt.datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert high["c_char"] == "ab   "
    assert high["c_varchar"] == "héllo wörld ✓"
    assert high["c_text"] == "long text " * 500
    assert high["c_uuid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert high["c_bytea"] == bytes.fromhex("deadbeef00ff")
    assert high["c_json"] == '{"a": [1, 2, {"b": null}]}'
    assert high["c_interval"] == "1 year 2 mons 3 days 04:05:06"
    assert high["c_array"] == "{1,NULL,3}"
    assert (high["c_oid"], high["c_name"], high["c_timetz"], high["c_inet"]) == (
        4294967295,
        "pg_name",
        "12:34:56.5-03:30",
        "2001:db8::1/64",
    )
    assert empty == {"id": 3, **{name: None for name in EXPECTED_TYPES if name != "id"}}


def test_text_longer_than_the_buffer_is_an_error_not_a_truncation(pgdb, pg_project):
    """psqlODBC reads into fixed buffers (the native reader has none, so its text is never cut either)."""
    pgdb.sql("create table notes (id int, body text); insert into notes values (1, repeat('x', 300));")
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, max_text_size: 100}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [notes]
    """,
        connection_extra="    reader: odbc\n",
    )
    project = hygge_core.load_project(root)
    result = hygge_core.run_with_retries(project.entity("db/notes"))
    assert result.status == "failed"
    assert "max_text_size" in (result.error or "")
    assert not (root / "lake" / "notes").exists()
