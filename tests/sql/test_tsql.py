"""SQL Server without a server: the generated T-SQL, the type map, connection strings, and access-token packing."""

from __future__ import annotations

import datetime as dt
import struct

import pyarrow as pa
import pytest

from hygge_core.config import ConnectionConfig
from hygge_core.errors import HomeError
from hygge_core.sql import drivers
from hygge_core.sql.auth import AccessToken, TokenSource, pack_access_token
from hygge_core.sql.dialect import DIALECTS, KeyRange, TableName, Window
from hygge_core.sql.failures import classify
from hygge_core.sql.odbc import build_target, escape
from hygge_core.sql.partitions import plan_ranges
from hygge_core.sql.typemap import SourceColumn

TSQL = DIALECTS["mssql"]
PG = DIALECTS["postgres"]


def column(name: str, type_name: str, precision=None, scale=None, length=None) -> SourceColumn:
    return TSQL.source_column(
        {
            "column_name": name,
            "type_name": type_name,
            "numeric_precision": precision,
            "numeric_scale": scale,
            "max_length": length,
        }
    )


def test_quoting_never_pastes_identifiers():
    assert TSQL.quote("Orders") == "[Orders]"
    assert TSQL.quote("weird]name; DROP TABLE x--") == "[weird]]name; DROP TABLE x--]"
    assert PG.quote('we"ird') == '"we""ird"'
    assert TSQL.relation(TSQL.parse_name("sales.Order Lines")) == "[sales].[Order Lines]"
    assert TSQL.relation(TSQL.parse_name("Orders")) == "[dbo].[Orders]"
    assert TSQL.parse_name("[my.schema].[a]]b]") == TableName("my.schema", "a]b")
    assert PG.parse_name('"Sales"."Orders"') == TableName("Sales", "Orders")
    with pytest.raises(HomeError, match="not a table name"):
        TSQL.parse_name("a.b.c.d")


def test_catalog_discovery_and_columns_sql():
    assert TSQL.tables_query() == (
        "SELECT s.name AS schema_name, t.name AS table_name FROM sys.tables AS t "
        "JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE t.is_ms_shipped = 0 ORDER BY s.name, t.name"
    )
    query, parameters = TSQL.columns_query(TableName("sales", "Orders"))
    assert "FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(?) ORDER BY c.column_id" in query
    assert "TYPE_NAME(c.system_type_id)" in query  # alias types resolve to their base type
    assert parameters == ["[sales].[Orders]"]


def test_select_list_casts_what_the_driver_cannot_deliver_faithfully():
    columns = TSQL.select_columns(
        [
            column("Id", "int", 10, 0, 4),
            column("Amount", "money", 19, 4, 8),
            column("Guid", "uniqueidentifier", 0, 0, 16),
            column("At", "datetimeoffset", 34, 7, 10),
            column("Shape", "geography", 0, 0, -1),
            column("Notes", "ntext", 0, 0, 16),
            column("Doc", "xml", 0, 0, -1),
            column("Ver", "timestamp", 0, 0, 8),
        ]
    )
    sql = TSQL.select(columns, "[sales].[Orders]", None)
    assert sql == (
        "SELECT [Id], [Amount], LOWER(CAST([Guid] AS char(36))) AS [Guid], "
        "CAST(SWITCHOFFSET([At], '+00:00') AS datetime2(7)) AS [At], [Shape].ToString() AS [Shape], "
        "CAST([Notes] AS nvarchar(max)) AS [Notes], CAST([Doc] AS nvarchar(max)) AS [Doc], CAST([Ver] AS binary(8)) AS [Ver] "
        "FROM [sales].[Orders]"
    )
    fetch, published = TSQL.schema_for(columns)
    assert fetch.field("At").type == pa.timestamp("us") and published.field("At").type == pa.timestamp("us", tz="UTC")


def test_watermark_predicates_cast_literals_to_the_declared_type():
    at = column("ModifiedAt", "datetime", 23, 3, 8)
    assert at.declared == "datetime"
    window = Window("ModifiedAt", dt.datetime(2024, 1, 2, 3, 4, 5, 3000), dt.datetime(2024, 2, 1), declared=at.declared)
    assert TSQL.where(window) == (
        " WHERE [ModifiedAt] > CAST('2024-01-02T03:04:05.003000' AS datetime) AND [ModifiedAt] <= CAST('2024-02-01T00:00:00' AS datetime)"
    )
    d2 = column("Stamp", "datetime2", 27, 7, 8)
    assert TSQL.literal(dt.datetime(2024, 1, 1), d2.declared) == "CAST('2024-01-01T00:00:00' AS datetime2(7))"
    assert TSQL.literal(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None) == "CAST('2024-01-01T00:00:00+00:00' AS datetimeoffset(7))"
    assert TSQL.where(Window("Id", None, 42)) == " WHERE [Id] <= 42"
    assert TSQL.where(Window("Id", 7, 42)) == " WHERE [Id] > 7 AND [Id] <= 42"
    assert TSQL.literal("O'Brien", None) == "N'O''Brien'"
    assert TSQL.max_query("Id", "[dbo].[T]") == "SELECT MAX([Id]) AS hygge_max FROM [dbo].[T]"
    assert (
        TSQL.count_query("[dbo].[T]", Window("Id", 7, 42))
        == "SELECT COUNT(*) AS hygge_count FROM [dbo].[T] WHERE [Id] > 7 AND [Id] <= 42"
    )
    with pytest.raises(HomeError, match="bit column"):
        TSQL.literal(True, None)


def test_partition_ranges_in_tsql_share_bounds_and_take_nulls_once():
    ranges = plan_ranges("Id", 1, 1000, 3)
    assert [TSQL.where(None, r) for r in ranges] == [
        " WHERE ([Id] < 334 OR [Id] IS NULL)",
        " WHERE [Id] >= 334 AND [Id] < 667",
        " WHERE [Id] >= 667",
    ]
    window = Window("ModifiedAt", dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1), declared="datetime")
    at = KeyRange("Day", dt.date(2024, 1, 10), dt.date(2024, 1, 20), declared="date")
    assert TSQL.select(None, "[dbo].[T]", window, at) == (
        "SELECT * FROM [dbo].[T] WHERE [ModifiedAt] > CAST('2024-01-01T00:00:00' AS datetime) "
        "AND [ModifiedAt] <= CAST('2024-02-01T00:00:00' AS datetime) "
        "AND [Day] >= CAST('2024-01-10' AS date) AND [Day] < CAST('2024-01-20' AS date)"
    )
    assert TSQL.key_bounds_query("Id", "[dbo].[T]", Window("Id", 7, 42)) == (
        "SELECT MIN([Id]) AS hygge_min, MAX([Id]) AS hygge_max FROM [dbo].[T] WHERE [Id] > 7 AND [Id] <= 42"
    )
    assert TSQL.where(None, KeyRange("Id", None, None, nulls=True)) == ""  # one range: the whole window
    assert TSQL.where(None, KeyRange("Id", None, None, nulls=False)) == " WHERE [Id] IS NOT NULL"
    assert PG.where(None, KeyRange("id", None, 5, nulls=True)) == ' WHERE ("id" < 5 OR "id" IS NULL)'


def test_datetime_partition_bounds_are_whole_seconds_sql_server_can_cast():
    low, high = dt.datetime(2024, 1, 1, 0, 0, 0, 3000), dt.datetime(2024, 1, 1, 0, 0, 9, 997000)
    ranges = plan_ranges("At", low, high, 4, declared="datetime")
    bounds = [r.lower for r in ranges[1:]]
    assert bounds == [dt.datetime(2024, 1, 1, 0, 0, s) for s in (2, 5, 7)]
    assert TSQL.where(None, ranges[1]) == (
        " WHERE [At] >= CAST('2024-01-01T00:00:02' AS datetime) AND [At] < CAST('2024-01-01T00:00:05' AS datetime)"
    )
    zoned = plan_ranges("At", low.replace(tzinfo=dt.UTC), high.replace(tzinfo=dt.UTC), 2, declared="datetimeoffset(7)")
    assert TSQL.where(None, zoned[1]) == " WHERE [At] >= CAST('2024-01-01T00:00:05+00:00' AS datetimeoffset(7))"


def test_partition_plans_cover_every_key_once():
    def owner(ranges, key):
        hits = [
            i
            for i, r in enumerate(ranges)
            if (key is None and r.nulls)
            or (key is not None and (r.lower is None or key >= r.lower) and (r.upper is None or key < r.upper))
        ]
        assert len(hits) == 1, (key, ranges)
        return hits[0]

    for low, high, count in [(1, 1, 4), (1, 3, 8), (-50, 50, 7), (1, 10**12, 5), (5, 6, 2)]:
        ranges = plan_ranges("k", low, high, count)
        assert len(ranges) == min(count, high - low + 1)
        assert [owner(ranges, k) for k in (low - 10**6, low, high, high + 10**6)] == [0, 0, len(ranges) - 1, len(ranges) - 1]
        assert owner(ranges, None) == 0
        sample = [*range(low, min(high, low + 1000) + 1), *(r.lower for r in ranges[1:]), *(r.lower - 1 for r in ranges[1:])]
        owners = [owner(ranges, k) for k in sorted(sample)]
        assert owners == sorted(owners)  # ranges are contiguous and in key order
    days = plan_ranges("d", dt.date(2024, 1, 1), dt.date(2024, 1, 3), 10)
    assert [(r.lower, r.upper) for r in days] == [
        (None, dt.date(2024, 1, 2)),
        (dt.date(2024, 1, 2), dt.date(2024, 1, 3)),
        (dt.date(2024, 1, 3), None),
    ]
    assert plan_ranges("k", None, None, 4) == [KeyRange("k", None, None, nulls=True)]
    with pytest.raises(HomeError, match="integer, date or timestamp"):
        plan_ranges("k", "a", "z", 2, label="f/e")
    with pytest.raises(HomeError, match="integer, date or timestamp"):
        plan_ranges("k", 1.5, 2.5, 2, label="f/e")


def test_query_entities_are_wrapped_for_windows():
    relation = TSQL.query_relation("select * from dbo.x where y = 1;")
    assert relation == "(select * from dbo.x where y = 1) AS hygge_source"
    assert (
        TSQL.select(None, relation, Window("Id", 1, 2))
        == "SELECT * FROM (select * from dbo.x where y = 1) AS hygge_source WHERE [Id] > 1 AND [Id] <= 2"
    )


@pytest.mark.parametrize(
    ("type_name", "precision", "scale", "length", "expected"),
    [
        ("tinyint", 3, 0, 1, pa.uint8()),
        ("smallint", 5, 0, 2, pa.int16()),
        ("int", 10, 0, 4, pa.int32()),
        ("bigint", 19, 0, 8, pa.int64()),
        ("bit", 1, 0, 1, pa.bool_()),
        ("decimal", 18, 4, 9, pa.decimal128(18, 4)),
        ("numeric", 38, 0, 17, pa.decimal128(38, 0)),
        ("money", 19, 4, 8, pa.decimal128(19, 4)),
        ("smallmoney", 10, 4, 4, pa.decimal128(10, 4)),
        ("float", 53, 0, 8, pa.float64()),
        ("real", 24, 0, 4, pa.float32()),
        ("date", 10, 0, 3, pa.date32()),
        ("time", 16, 7, 5, pa.time64("ns")),
        ("time", 12, 3, 4, pa.time64("us")),
        ("smalldatetime", 16, 0, 4, pa.timestamp("s")),
        ("datetime", 23, 3, 8, pa.timestamp("ms")),
        ("datetime2", 27, 7, 8, pa.timestamp("us")),
        ("datetime2", 23, 3, 7, pa.timestamp("ms")),
        ("datetime2", 19, 0, 6, pa.timestamp("s")),
        ("datetimeoffset", 34, 7, 10, pa.timestamp("us", tz="UTC")),
        ("char", 0, 0, 10, pa.string()),
        ("varchar", 0, 0, -1, pa.string()),
        ("nchar", 0, 0, 20, pa.string()),
        ("nvarchar", 0, 0, -1, pa.string()),
        ("text", 0, 0, 16, pa.string()),
        ("ntext", 0, 0, 16, pa.string()),
        ("uniqueidentifier", 0, 0, 16, pa.string()),
        ("binary", 0, 0, 16, pa.binary()),
        ("varbinary", 0, 0, -1, pa.binary()),
        ("image", 0, 0, 16, pa.binary()),
        ("xml", 0, 0, -1, pa.string()),
        ("sql_variant", 0, 0, 8016, pa.string()),
    ],
)
def test_tsql_type_map(type_name, precision, scale, length, expected):
    assert TSQL.mapping(column("c", type_name, precision, scale, length)).arrow == expected


def test_declared_types_for_literal_casts():
    assert column("c", "nvarchar", 0, 0, 80).declared == "nvarchar(40)"
    assert column("c", "varchar", 0, 0, -1).declared == "varchar(max)"
    assert column("c", "decimal", 18, 4, 9).declared == "decimal(18,4)"
    assert column("c", "datetime2", 27, 3, 8).declared == "datetime2(3)"


def test_access_token_packing_matches_msodbcsql_layout():
    packed = pack_access_token("eyJ0eXAi.abc")
    assert packed[:4] == struct.pack("<I", 24)  # byte length of the UTF-16-LE token, little endian
    assert packed[4:] == "eyJ0eXAi.abc".encode("utf-16-le")
    assert packed[4:6] == b"e\x00"


def test_tokens_are_cached_and_refreshed_before_expiry():
    now = [1000.0]
    issued = []

    def fetch() -> AccessToken:
        issued.append(now[0])
        return AccessToken(token=f"t{len(issued)}", expires_on=now[0] + 3600)

    source = TokenSource("conn", fetch, clock=lambda: now[0])
    assert source.get().token == "t1"
    now[0] += 3000  # 10 minutes left: still cached
    assert source.get().token == "t1"
    now[0] += 400  # under the 5-minute margin: refreshed before the driver could be handed a dying token
    assert source.get().token == "t2"
    assert source.packed() == pack_access_token("t2")
    assert issued == [1000.0, 4400.0]


def mssql(**values) -> ConnectionConfig:
    return ConnectionConfig.model_validate({"type": "mssql", "server": "db.example.com", "database": "Erp", **values})


@pytest.fixture
def any_mssql_driver(monkeypatch):
    monkeypatch.setattr(drivers, "registered_drivers", lambda: ["ODBC Driver 18 for SQL Server"])


def test_connection_routes_per_auth_mode(any_mssql_driver):
    sql_login = build_target("erp", mssql(auth="sql", user="loader", password="s3cr;et}x"))
    assert sql_login.route == "arrow_odbc"
    assert sql_login.connection_string == (
        "Driver={ODBC Driver 18 for SQL Server};Server=tcp:db.example.com,1433;Database=Erp;Encrypt=yes;"
        "TrustServerCertificate=no;APP=hygge;UID=loader;PWD={s3cr;et}}x};"
    )
    assert "s3cr" not in repr(sql_login) and sql_login.label == "connection 'erp' (mssql db.example.com:1433/Erp)"
    msi = build_target("erp", mssql(auth="managed_identity", client_id="abc"))
    assert msi.route == "arrow_odbc" and "Authentication=ActiveDirectoryMsi;UID=abc;" in msi.connection_string
    for mode in ("azure_ad", "azure_cli"):
        token = build_target("erp", mssql(auth=mode))
        assert token.route == "mssql_python" and token.token_source is not None and "PWD" not in token.connection_string
    with pytest.raises(HomeError, match="needs user: and password:"):
        build_target("erp", mssql(auth="sql"))


def test_postgres_connection_string_forces_streaming(monkeypatch):
    monkeypatch.setattr(drivers, "registered_drivers", lambda: ["PostgreSQL Unicode"])
    config = ConnectionConfig.model_validate(
        {
            "type": "postgres",
            "server": "h",
            "database": "d",
            "user": "u",
            "password": "p",
            "login_timeout": "7s",
            "reader": "odbc",
        }
    )
    target = build_target("pg", config)
    assert "UseDeclareFetch=1;" in target.connection_string and "BoolsAsChar=0;" in target.connection_string
    assert "pqopt={connect_timeout=7};" in target.connection_string
    bad = config.model_copy(update={"options": {"UseDeclareFetch": "0"}})
    with pytest.raises(HomeError, match="UseDeclareFetch must stay 1"):
        build_target("pg", bad)


def test_escape():
    assert escape("plain") == "plain"
    assert escape("a;b") == "{a;b}"
    assert escape("a}b") == "{a}}b}"
    assert escape(" padded ") == "{ padded }"


def test_missing_driver_names_the_package(monkeypatch):
    monkeypatch.setattr(drivers, "registered_drivers", lambda: ["PostgreSQL Unicode"])
    monkeypatch.setattr(drivers, "shipped_msodbcsql", lambda: None)
    with pytest.raises(HomeError, match=r"pip install mssql-python-odbc"):
        drivers.mssql_driver()


def test_shipped_driver_is_found_when_the_package_is_installed(monkeypatch):
    pytest.importorskip("mssql_python_odbc")
    monkeypatch.setattr(drivers, "registered_drivers", lambda: [])
    found = drivers.mssql_driver()
    assert "libmsodbcsql-18" in found


def test_error_classification_and_redaction():
    secret = "Hunter2-secret"
    login = classify(
        Exception(f"('28000', '[28000] Login failed for user loader. PWD={secret}')"),
        "connection 'erp'",
        during="connecting",
        secrets=[secret],
    )
    assert isinstance(login, HomeError) and "login failed" in str(login) and secret not in str(login)
    lost = classify(
        Exception("State: 08S01, Native error: 0, Message: Communication link failure"), "connection 'erp'", during="reading"
    )
    assert type(lost).__name__ == "TransientError"
    missing = classify(Exception("('42S02', \"[42S02] Invalid object name 'dbo.Nope'.\")"), "connection 'erp'", during="reading")
    assert isinstance(missing, HomeError) and "check the table" in str(missing)


def test_mssql_samples_are_valid(monkeypatch):
    """The SQL Server samples load as shipped (the entity-pattern one needs a server only to discover)."""
    from pathlib import Path

    import yaml

    import hygge_core
    from hygge_core.config import FlowConfig, ProjectConfig
    from hygge_core.env_vars import expand

    samples = Path(__file__).resolve().parents[2] / "samples"
    plan = hygge_core.load_project(samples / "mssql_to_parquet.yaml", environ={}).entity("erp_orders/erp_orders")
    assert plan.home.describe() == "mssql erp: table sales.Orders" and plan.connection.auth == "azure_ad"
    raw = expand(yaml.safe_load((samples / "mssql_entity_pattern.yaml").read_text()), environ={})
    flows = raw.pop("flows")
    assert ProjectConfig.model_validate(raw).connections["erp"].pool_size == 3
    flow = FlowConfig.model_validate(flows["erp_to_lake"])
    assert flow.entities.include == ["sales.*"] and flow.entities.exclude == ["sales.tmp_*"]
