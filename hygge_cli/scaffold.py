"""``hygge init``: a project that runs as is, with commented examples for SQL sources and Delta Lake stores.

The sample data is generated here rather than copied from the repository, so
``hygge init`` works from an installed wheel too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hygge_cli.instance import project_dagster_home
from hygge_core.errors import ConfigError

HYGGE_YML = """\
# {name}: a hygge project. Run it with `hygge start`, check it with `hygge debug`,
# and browse it in the Dagster UI with `hygge dev`. Every key is documented in the
# README's YAML reference.
name: {name}
concurrency: 2                  # entities loaded at once

# connections:                  # databases, referred to by flows as `connection: <name>`
#   erp:                        # SQL Server with Azure AD (az login, managed identity, ...)
#     type: mssql
#     server: ${{ERP_HOST}}
#     database: Erp
#     auth: azure_ad            # or service_principal / managed_identity / azure_cli / sql
#     pool_size: 4
#   erp_sql_login:              # SQL Server with a SQL login
#     type: mssql
#     server: ${{ERP_HOST}}
#     database: Erp
#     auth: sql
#     user: ${{ERP_USER}}
#     password: ${{ERP_PASSWORD}}
#   warehouse:                  # PostgreSQL
#     type: postgres
#     server: localhost
#     port: 5432
#     database: warehouse
#     auth: sql
#     user: ${{PGUSER:-hygge}}
#     password: ${{PGPASSWORD}}

flows:
  sample_to_lake:               # Parquet folders -> Parquet lake (runs as is)
    home:
      type: parquet
      path: data/home           # data/home/<entity>
    store:
      type: parquet
      path: lake                # lake/<entity>
    entities: [customers, orders]
    run_type: full_drop

  # erp_orders:                 # one SQL Server table
  #   home: {{type: mssql, connection: erp, table: sales.Orders}}
  #   store: {{type: parquet, path: lake/erp}}
  #   run_type: incremental
  #   watermark: {{column: ModifiedAt, key: OrderId, lookback: 1h}}
  #
  # erp_sales:                  # every table of a schema, discovered from the catalog
  #   home: {{type: mssql, connection: erp}}
  #   store: {{type: parquet, path: lake/erp}}
  #   entities: {{include: ["sales.*"], exclude: ["sales.tmp_*"]}}
  #   schedule: "0 2 * * *"
  #
  # sample_to_delta:            # the same files as Delta Lake tables (pip install 'hygge[delta]')
  #   home: {{type: parquet, path: data/home}}
  #   store: {{type: delta, path: lake/delta}}   # lake/delta/<entity>: a Delta table each, one commit per run
  #   entities: [customers, orders]
  #   run_type: full_drop
  #
  # erp_to_onelake:             # SQL Server -> Microsoft Fabric OneLake (a lakehouse's Tables/ are Delta tables)
  #   home: {{type: mssql, connection: erp, table: "sales.{{entity}}"}}
  #   store:
  #     type: delta             # or az://<container>/<path>, abfss://<container>@<account>.dfs.core.windows.net/<path>, s3://
  #     path: "abfss://${{FABRIC_WORKSPACE}}@onelake.dfs.fabric.microsoft.com/${{FABRIC_LAKEHOUSE}}.Lakehouse/Tables/{{entity}}"
  #     storage_options:        # delta-rs' object-store keys; values are secrets, never printed
  #       AZURE_USE_FABRIC_ENDPOINT: "true"
  #       AZURE_TENANT_ID: ${{AZURE_TENANT_ID}}           # a service principal; or AZURE_USE_AZURE_CLI: "true",
  #       AZURE_CLIENT_ID: ${{AZURE_CLIENT_ID}}           # or nothing at all with a managed identity
  #       AZURE_CLIENT_SECRET: ${{AZURE_CLIENT_SECRET}}
  #   entities: [Customers, Orders]
  #   run_type: incremental
  #   watermark: {{column: ModifiedAt, key: Id}}      # with a key, each run merges (upserts) on Id
"""

GITIGNORE = """\
# hygge writes these; keep them out of version control
lake/
.hygge-staging/
.dagster/
__pycache__/
"""


def scaffold(target: Path, *, name: str, force: bool = False) -> list[Path]:
    """Create the project in ``target``; refuse to touch an existing project unless ``force``."""
    config = target / "hygge.yml"
    if config.exists() and not force:
        raise ConfigError(f"{config} already exists; pass --force to overwrite it (your data folders are kept)")
    target.mkdir(parents=True, exist_ok=True)
    written = [config, target / ".gitignore"]
    config.write_text(HYGGE_YML.format(name=name), encoding="utf-8")
    (target / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    written.append(project_dagster_home(target) / "dagster.yaml")  # the instance hygge start, hygge dev and dg launch share
    for entity, table in sample_tables().items():
        path = target / "data" / "home" / entity / f"{entity}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
        written.append(path)
    return written


def sample_tables() -> dict[str, pa.Table]:
    customers = pa.table(
        {
            "customer_id": pa.array(range(1, 101), pa.int64()),
            "name": [f"Customer {i:03d}" for i in range(1, 101)],
            "country": [["DK", "SE", "NO", "FI", "DE"][i % 5] for i in range(100)],
        }
    )
    orders = pa.table(
        {
            "order_id": pa.array(range(1, 1001), pa.int64()),
            "customer_id": pa.array([1 + (i * 37) % 100 for i in range(1000)], pa.int64()),
            "amount": pa.array([round((i * 7919) % 100000 / 100, 2) for i in range(1000)], pa.float64()),
            "ordered_at": pa.array(
                [dt.datetime(2025, 1, 1) + dt.timedelta(minutes=17 * i) for i in range(1000)], pa.timestamp("us")
            ),
        }
    )
    return {"customers": customers, "orders": orders}
