"""Configuration loading: every user mistake is an error naming the file, the key and a fix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from hygge_core import ConfigError, Home, HomeConfig, load_project

FLOW = """
name: shop
flows:
  files:
    home: {type: parquet, path: data/home}
    store: {type: parquet, path: lake}
    entities: [orders, customers]
"""


def problems_of(root: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_project(root, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def test_entities_map_home_folder_to_store_folder_against_project_root(write_project, tmp_path, monkeypatch):
    root = write_project(FLOW)
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    project = load_project(root)
    orders = project.entity("files/orders")
    assert orders.home.path == str(root / "data" / "home" / "orders")
    assert orders.store.path == str(root / "lake" / "orders")
    assert [plan.key for plan in project.plans] == ["files/orders", "files/customers"]


def test_project_is_found_by_walking_up_from_a_subfolder(write_project, monkeypatch):
    root = write_project(FLOW)
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert load_project().root == root


def test_no_project_anywhere_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"no hygge.yml .*hygge init"):
        load_project()


def test_typo_in_store_key_names_file_key_path_and_suggestion(write_project):
    root = write_project(FLOW.replace("path: lake}", "path: lake, compresion: zstd}"))
    (problem,) = problems_of(root)
    assert "files" in problem and "store.compresion" in problem
    assert "unknown key 'compresion'" in problem
    assert "did you mean 'compression'?" in problem


def test_typo_in_flow_and_top_level_keys_are_all_reported_at_once(write_project):
    text = FLOW.replace("name: shop", "name: shop\nconcurency: 2").replace("entities:", "entites:")
    problems = problems_of(write_project(text))
    joined = "\n".join(problems)
    assert "hygge.yml: concurency: unknown key 'concurency' (did you mean 'concurrency'?)" in joined
    assert "hygge.yml: flows.files.entites: unknown key 'entites' (did you mean 'entities'?)" in joined


def test_unknown_home_type_lists_known_types(write_project):
    problems = problems_of(write_project(FLOW.replace("type: parquet, path: data/home", "type: parket, path: data/home")))
    assert any("unknown home type 'parket' (did you mean 'parquet'?)" in p and "known types:" in p for p in problems)


def test_environment_variables_expand_with_defaults(write_project):
    text = FLOW.replace("path: lake}", "path: '${LAKE_ROOT:-lake}/${TEAM}'}")
    project = load_project(write_project(text), environ={"TEAM": "finance"})
    assert project.entity("files/orders").store.path.endswith("lake/finance/orders")


def test_unset_environment_variable_is_an_error_naming_key(write_project):
    problems = problems_of(write_project(FLOW.replace("path: lake}", "path: '${LAKE_ROOT}'}")), environ={})
    assert problems == [
        "hygge.yml: flows.files.store.path: environment variable LAKE_ROOT is not set (set it, or write ${LAKE_ROOT:-default})"
    ]


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", "/etc", "a\\b", "bad\x07name", ""])
def test_entity_names_that_would_escape_the_store_are_rejected(write_project, name):
    text = FLOW.replace("entities: [orders, customers]", f"entities: [{name!r}]".replace("'", '"'))
    problems = problems_of(write_project(text))
    assert any("entity name" in p and "entities[0]" in p for p in problems), problems


def test_entity_mappings_override_home_store_and_run_type(write_project):
    text = """
    name: shop
    flows:
      files:
        home: {type: parquet, path: data/home}
        store: {type: parquet, path: lake}
        entities:
          - orders
          - name: customers
            home: {path: elsewhere/people.parquet}
            store: {compression: snappy}
            run_type: incremental
    """
    project = load_project(write_project(text))
    customers = project.entity("files/customers")
    assert customers.home.path.endswith("elsewhere/people.parquet")
    assert customers.store.compression == "snappy"
    assert customers.run_type == "incremental"
    assert project.entity("files/orders").run_type == "full_drop"


def test_entity_placeholder_in_templates(write_project):
    text = FLOW.replace("path: data/home}", "path: 'data/{entity}/current'}").replace("path: lake}", "path: 'lake/{entity}_v2'}")
    orders = load_project(write_project(text)).entity("files/orders")
    assert orders.home.path.endswith("data/orders/current")
    assert orders.store.path.endswith("lake/orders_v2")


def test_flow_folders_with_entity_files(write_project):
    root = write_project("name: shop\n")
    flow_dir = root / "flows" / "files"
    (flow_dir / "entities").mkdir(parents=True)
    (flow_dir / "flow.yml").write_text("home: {type: parquet, path: data}\nstore: {type: parquet, path: lake}\n")
    (flow_dir / "entities" / "orders.yml").write_text("run_type: incremental\n")
    (flow_dir / "entities" / "customers.yml").write_text("name: customers\nstore: {compresion: snappy}\n")
    problems = problems_of(root)
    assert problems == [
        "flows/files/entities/customers.yml: store: unknown key 'compresion' (did you mean 'compression'?)"
    ] or any("customers" in p and "compresion" in p for p in problems), problems
    (flow_dir / "entities" / "customers.yml").write_text("name: customers\n")
    project = load_project(root)
    assert sorted(plan.key for plan in project.plans) == ["files/customers", "files/orders"]
    assert project.entity("files/orders").run_type == "incremental"


class ConnectedHomeConfig(HomeConfig):
    """A home type with a `connection:` key, registered for these tests only."""

    type: Literal["test_connected"] = "test_connected"
    connection: str


class ConnectedHome(Home, type_name="test_connected", config=ConnectedHomeConfig):
    def read(self, previous, run_type):
        return iter(())


def test_undefined_connection_is_named(write_project):
    text = """
    name: shop
    connections:
      erp: {type: postgres, server: localhost, database: erp}
    flows:
      sales:
        home: {type: test_connected, connection: epr}
        store: {type: parquet, path: lake}
    """
    problems = problems_of(write_project(text))
    assert any("home.connection" in p and "'epr'" in p and "did you mean 'erp'?" in p for p in problems), problems


def test_invalid_yaml_reports_line(write_project):
    problems = problems_of(write_project("name: shop\nflows: [\n"))
    assert problems and "invalid YAML at line" in problems[0]


def test_duplicate_entities_are_an_error(write_project):
    problems = problems_of(write_project(FLOW.replace("[orders, customers]", "[orders, orders]")))
    assert any("listed twice" in p for p in problems)


def test_select_by_flow_and_entity_with_suggestions(write_project):
    project = load_project(write_project(FLOW))
    assert [p.key for p in project.select(entities=["files.orders"])] == ["files/orders"]
    assert [p.key for p in project.select(flows=["files"])] == ["files/orders", "files/customers"]
    with pytest.raises(ConfigError, match=r"no entity 'files/order' \(did you mean 'files/orders'\?\)"):
        project.select(entities=["files/order"])


def test_durations_accept_human_units(write_project):
    text = FLOW + "    retries: {max: 3, delay: 90s}\n    watermark: {column: updated_at, lookback: 1h}\n"
    orders = load_project(write_project(text)).entity("files/orders")
    assert orders.flow_config.retries.delay.total_seconds() == 90
    assert orders.watermark is not None and orders.watermark.lookback.total_seconds() == 3600
    bad = problems_of(write_project(text.replace("90s", "ninety"), folder="bad"))
    assert any("retries.delay" in p and "not a duration" in p for p in bad)


@pytest.mark.parametrize("name", [".hygge-staging", "_hygge"])
def test_entity_names_reserved_for_hygge_folders_are_rejected(write_project, name):
    problems = problems_of(write_project(FLOW.replace("[orders, customers]", f'["{name}"]')))
    assert any("is reserved for hygge's own folders" in p for p in problems), problems
