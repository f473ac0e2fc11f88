"""Configuration behaviours proven end to end: load a real project, run it, read the lake.

The unit tests check the plans; these check that the data of the right source
lands in the right folder, whatever the working directory and however the
project is written (inline flows, flow folders with entity files, discovery,
per-entity overrides, ``{entity}`` templates, environment variables).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hygge_core import ConfigError, load_project, run_project


def source(root: Path, relative: str, entity: str, rows: int = 20) -> pa.Table:
    """Write a source file whose content names its entity, so a mix-up shows in the data."""
    table = pa.table({"id": pa.array(range(rows), pa.int64()), "origin": [f"{entity}-{i}" for i in range(rows)]})
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return table


def landed(folder: Path) -> pa.Table:
    files = sorted(p for p in folder.rglob("*.parquet") if "_hygge" not in p.relative_to(folder).parts)
    assert files, f"nothing published in {folder}"
    return pa.concat_tables([pq.read_table(p) for p in files])


def run_all(root: Path, **kwargs: object):
    result = run_project(load_project(root), **kwargs)  # type: ignore[arg-type]
    assert result.ok, [(r.key, r.error) for r in result.failed]
    return result


def test_default_mapping_home_entity_folder_to_store_entity_folder(write_project):
    root = write_project(
        """
        name: shop
        flows:
          files:
            home: {type: parquet, path: data/home}
            store: {type: parquet, path: lake}
            entities: [orders, customers]
        """
    )
    orders = source(root, "data/home/orders/2025-01.parquet", "orders")
    customers = source(root, "data/home/customers/all.parquet", "customers", rows=5)

    run_all(root)

    assert landed(root / "lake" / "orders").equals(orders)
    assert landed(root / "lake" / "customers").equals(customers)
    assert sorted(p.name for p in (root / "lake").iterdir() if not p.name.startswith(".")) == ["customers", "orders"]


def test_entity_placeholder_in_home_and_store_paths(write_project):
    root = write_project(
        """
        name: shop
        flows:
          files:
            home: {type: parquet, path: "exports/{entity}/current/data.parquet"}
            store: {type: parquet, path: "lake/{entity}_copy"}
            entities: [orders, customers]
        """
    )
    orders = source(root, "exports/orders/current/data.parquet", "orders")
    customers = source(root, "exports/customers/current/data.parquet", "customers")
    source(root, "exports/orders/previous/data.parquet", "stale")  # must not be read

    run_all(root)

    assert landed(root / "lake" / "orders_copy").equals(orders)
    assert landed(root / "lake" / "customers_copy").equals(customers)


def test_entity_overrides_home_path_and_run_type(write_project):
    root = write_project(
        """
        name: shop
        flows:
          files:
            home: {type: parquet, path: data/home}
            store: {type: parquet, path: lake}
            run_type: full_drop
            entities:
              - orders
              - name: customers
                home: {path: legacy/crm_customers.parquet}
                run_type: incremental
        """
    )
    orders = source(root, "data/home/orders/a.parquet", "orders")
    customers = source(root, "legacy/crm_customers.parquet", "customers")
    project = load_project(root)
    assert [(p.entity, p.run_type) for p in project.plans] == [("orders", "full_drop"), ("customers", "incremental")]

    run_all(root)
    again = run_all(root)

    assert landed(root / "lake" / "orders").equals(orders)
    assert landed(root / "lake" / "customers").equals(customers)
    statuses = {r.entity: r.status for r in again.entities}
    assert statuses == {"orders": "success", "customers": "skipped"}  # incremental with nothing new


def test_flow_folder_with_entity_files(write_project):
    root = write_project("name: shop\n")
    flow_dir = root / "flows" / "crm"
    (flow_dir / "entities").mkdir(parents=True)
    (flow_dir / "flow.yml").write_text(
        textwrap.dedent(
            """
            home: {type: parquet, path: data/crm}
            store: {type: parquet, path: lake/crm}
            entities: [accounts]
            """
        )
    )
    (flow_dir / "entities" / "contacts.yml").write_text("store: {path: lake/people/contacts}\n")
    (flow_dir / "entities" / "leads.yml").write_text("name: leads\nhome: {path: data/marketing/leads.parquet}\n")
    accounts = source(root, "data/crm/accounts/part.parquet", "accounts")
    contacts = source(root, "data/crm/contacts/part.parquet", "contacts")
    leads = source(root, "data/marketing/leads.parquet", "leads")

    result = run_all(root)

    assert sorted(r.key for r in result.entities) == ["crm/accounts", "crm/contacts", "crm/leads"]
    assert landed(root / "lake" / "crm" / "accounts").equals(accounts)
    assert landed(root / "lake" / "people" / "contacts").equals(contacts)
    assert landed(root / "lake" / "crm" / "leads").equals(leads)


def test_include_exclude_discovers_entity_folders_and_files(write_project):
    root = write_project(
        """
        name: shop
        flows:
          files:
            home: {type: parquet, path: data/home}
            store: {type: parquet, path: lake}
            entities:
              include: ["order*", "customers"]
              exclude: ["order_lines"]
        """
    )
    orders = source(root, "data/home/orders/a.parquet", "orders")
    customers = source(root, "data/home/customers.parquet", "customers")  # an entity can be a single file
    source(root, "data/home/order_lines/a.parquet", "order_lines")
    source(root, "data/home/products/a.parquet", "products")
    source(root, "data/home/_scratch/a.parquet", "hidden")

    result = run_all(root)

    assert sorted(r.entity for r in result.entities) == ["customers", "orders"]
    assert landed(root / "lake" / "orders").equals(orders)
    assert landed(root / "lake" / "customers").equals(customers)
    assert not (root / "lake" / "order_lines").exists() and not (root / "lake" / "products").exists()


def test_relative_paths_resolve_against_the_project_not_the_working_directory(write_project, tmp_path, monkeypatch):
    root = write_project(
        """
        name: shop
        flows:
          files:
            home: {type: parquet, path: ./data/../data/home}
            store: {type: parquet, path: lake}
            entities: [orders]
        """
    )
    orders = source(root, "data/home/orders/a.parquet", "orders")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data" / "home" / "orders").mkdir(parents=True)
    source(elsewhere, "data/home/orders/a.parquet", "decoy")
    monkeypatch.chdir(elsewhere)

    run_all(root / "hygge.yml")

    assert landed(root / "lake" / "orders").equals(orders)
    assert not (elsewhere / "lake").exists()


def test_environment_variables_and_defaults_in_paths(write_project, tmp_path, monkeypatch):
    root = write_project(
        """
        name: shop
        flows:
          files:
            home: {type: parquet, path: "${HYGGE_TEST_SOURCE}"}
            store: {type: parquet, path: "${HYGGE_TEST_UNSET_LAKE:-lake/default}"}
            entities: [orders]
        """
    )
    outside = tmp_path / "shared-drive"
    orders = source(outside, "orders/a.parquet", "orders")
    monkeypatch.setenv("HYGGE_TEST_SOURCE", str(outside))
    monkeypatch.delenv("HYGGE_TEST_UNSET_LAKE", raising=False)

    run_all(root)

    assert landed(root / "lake" / "default" / "orders").equals(orders)

    monkeypatch.delenv("HYGGE_TEST_SOURCE")
    with pytest.raises(ConfigError, match=r"HYGGE_TEST_SOURCE is not set"):
        load_project(root)
