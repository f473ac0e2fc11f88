"""hygge's SQL Server reads on the wire, in-process: partitioned range reads and a cancelled (timed-out) query."""

from __future__ import annotations

import textwrap

import pytest
import scenarios
from scenarios import EVENTS_DECLARED, events
from tds_helpers import PASSWORD, PASSWORD_ENV, TdsSource, connection_yaml, write_table

import hygge_core
from hygge_core.errors import HyggeError


@pytest.fixture
def project(tmp_path, tds_data, tds_server, certificate, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    write_table(tds_data, "events", events(5000), EVENTS_DECLARED)
    server = tds_server()

    def write(home: str, *, pool_size: int = 4):
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        text = (
            "name: reads\nconnections:\n"
            + connection_yaml(server.port, "tls", certificate, pool_size=pool_size)
            + textwrap.dedent(f"""
        flows:
          erp:
            home: {home}
            store: {{type: parquet, path: "lake/{{entity}}"}}
            entities: [events]
        """)
        )
        (root / "hygge.yml").write_text(text, encoding="utf-8")
        return root, hygge_core.load_project(root).entity("erp/events")

    return server, write


def test_partitioned_read_splits_the_key_range_over_pooled_connections(tmp_path, tds_source, msodbc):
    source: TdsSource = tds_source("tls")
    scenarios.partitioned_read(source, tmp_path / "project")
    stats = source.server.stats
    ranges = [s for s in stats.statements if s.startswith("SELECT [id], [at], [payload] FROM [dbo].[events] WHERE")]
    assert len(ranges) == 4  # four disjoint slices, each a real predicate on [at] executed by the engine
    assert all("[at]" in s for s in ranges) and stats.max_active <= 3


def test_a_timed_out_query_is_cancelled_with_an_attention_and_nothing_is_published(project, msodbc):
    server, write = project
    root, plan = write("{type: mssql, connection: ms, query_timeout: 2s, batch_size: 100}")
    server.faults.stall_after(150, match="FROM [dbo].[events]", seconds=60)
    with pytest.raises(HyggeError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    # arrow-odbc fetches again after the driver's timeout (HYT00), so the error hygge sees is HY010; see docs/sql.md
    assert "reading [dbo].[events], which ran past home.query_timeout (2 s)" in message, message
    assert "HYT00" in message or "HY010" in message, message
    assert server.stats.attentions == 1  # the driver cancelled, and the server acknowledged it
    assert not (root / "lake" / "events").exists()
