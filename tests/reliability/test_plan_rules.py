"""The plan is checked as a whole, YAML is read strictly, and names are data (issue 9, items 2, 7, 8).

Every case runs real ``hygge`` processes (``debug`` and ``start``), asserts the message
and that nothing in the project folder changed: these are configuration problems,
so nothing may be read, written or deleted.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .cli_support import hygge, output, tree
from .support import make_table, read_entity, write_source

DISCOVER_EVERYTHING = """
name: p
flows:
  f:
    home: {type: parquet, path: data}
    store: {type: parquet, path: lake}
    entities: {include: ["*"]}
"""


def project(root: Path, config: str, sources: tuple[str, ...] = ("data/a/part.parquet", "data/b/part.parquet")) -> Path:
    root.mkdir(parents=True)
    (root / "hygge.yml").write_text(textwrap.dedent(config), encoding="utf-8")
    for index, source in enumerate(sources):
        write_source(root / source, make_table(range(index * 10, index * 10 + 10), source))
    return root


def refused_by_debug_and_start(root: Path, *fragments: str, env: dict[str, str] | None = None) -> str:
    """Both commands exit 2 (configuration) naming the problem, and the project folder is byte-for-byte unchanged."""
    before = tree(root)
    texts = []
    for command in ("debug", "start"):
        done = hygge(command, project=root, env=env)
        text = output(done)
        assert done.returncode == 2, f"{command}: {text}"
        for fragment in fragments:
            assert fragment in text, f"{command}: {fragment!r} not in {text!r}"
        texts.append(text)
        assert tree(root) == before, f"{command} changed the project folder"
    return texts[-1]


def test_two_entities_writing_one_folder_are_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        """
        name: p
        flows:
          f:
            home: {type: parquet, path: data}
            store: {type: parquet, path: lake}
            entities: [a, {name: b, store: {path: lake/a}}]
        """,
    )
    refused_by_debug_and_start(root, f"entities 'f/a' and 'f/b' both write to {root / 'lake' / 'a'}")


def test_an_entity_folder_inside_another_is_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        """
        name: p
        flows:
          f:
            home: {type: parquet, path: data}
            store: {type: parquet, path: lake}
            entities: [a, {name: b, store: {path: lake/a/inner}}]
        """,
    )
    refused_by_debug_and_start(
        root, f"entity 'f/b' writes to {root / 'lake' / 'a' / 'inner'}, inside the destination of 'f/a' ({root / 'lake' / 'a'})"
    )


def test_a_store_equal_to_its_home_is_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        """
        name: p
        flows:
          f:
            home: {type: parquet, path: data/a}
            store: {type: parquet, path: data/a}
        """,
    )
    refused_by_debug_and_start(
        root, f"entity 'f/f' writes to {root / 'data' / 'a'}, which 'f/f' reads from", "would read its own output"
    )


def test_a_store_inside_the_home_folder_is_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        """
        name: p
        flows:
          f:
            home: {type: parquet, path: data}
            store: {type: parquet, path: data/lake}
        """,
    )
    refused_by_debug_and_start(root, f"entity 'f/f' writes to {root / 'data' / 'lake'}, which 'f/f' reads from ({root / 'data'})")


def test_a_home_inside_another_entitys_store_is_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        """
        name: p
        flows:
          load:
            home: {type: parquet, path: data/a}
            store: {type: parquet, path: lake}
          reload:
            home: {type: parquet, path: lake/part}
            store: {type: parquet, path: out}
        """,
    )
    refused_by_debug_and_start(
        root,
        f"entity 'reload/reload' reads from {root / 'lake' / 'part'}, inside the destination of 'load/load' ({root / 'lake'})",
    )


def test_a_duplicated_key_names_the_file_and_both_lines(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        """
        name: p
        flows:
          f:
            home: {type: parquet, path: data}
            store:
              type: parquet
              path: lake
              path: elsewhere
            entities: [a]
        """,
    )
    refused_by_debug_and_start(root, "hygge.yml: line 9: key 'path' is given twice in one mapping (first at line 8); keep one")


def test_nested_aliases_are_bounded(tmp_path: Path) -> None:
    levels = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    bomb = "name: p\nl0: &l0 [x, x, x, x, x, x, x, x, x]\n" + levels
    assert len(bomb) < 700
    root = project(tmp_path / "p", bomb)
    refused_by_debug_and_start(root, "hygge.yml: line", "aliases expand to more than 100,000 values")


@pytest.mark.parametrize("secret", ["password", "client_secret"])
def test_a_secret_of_the_wrong_type_is_never_echoed(tmp_path: Path, secret: str) -> None:
    root = project(
        tmp_path / "p",
        f"""
        name: p
        connections:
          erp: {{type: mssql, server: db.invalid, database: Erp, auth: sql, user: u, {secret}: 98765432123}}
        flows:
          f:
            home: {{type: parquet, path: data}}
            store: {{type: parquet, path: lake}}
            entities: [a]
        """,
    )
    text = refused_by_debug_and_start(root, f"hygge.yml: connections.erp.{secret}: Input should be a valid string")
    assert "98765432123" not in text


def test_discovered_names_that_collapse_into_one_entity_are_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        DISCOVER_EVERYTHING,
        sources=("data/a\\b/part.parquet", "data/a_b/part.parquet"),
    )
    refused_by_debug_and_start(root, "hygge.yml: flows.f.entities: discovered 'a\\\\b' and 'a_b' would both become entity 'a_b'")


def test_entity_names_with_glob_characters_match_only_their_own_files(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        DISCOVER_EVERYTHING,
        sources=(
            "data/sales*/part.parquet",
            "data/sales_2024/part.parquet",
            "data/weird[1]/part.parquet",
            "data/weird1/part.parquet",
        ),
    )
    done = hygge("start", project=root)
    assert done.returncode == 0, output(done)
    for index, name in enumerate(["sales*", "sales_2024", "weird[1]", "weird1"]):
        table = read_entity(root / "lake" / name)
        assert sorted(table.column("id").to_pylist()) == list(range(index * 10, index * 10 + 10)), name
