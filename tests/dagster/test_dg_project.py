"""The component as a `dg` user meets it: a `create-dagster` project, `dg scaffold defs`, `dg check defs`,
`dg list defs` and `dg launch`, each a real process.

The scaffolded package is put on PYTHONPATH (what `uv sync` or `pip install -e .` does for a user), so the
test venv is never changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from hygge_cli.scaffold import sample_tables
from hygge_dagster.component_scaffold import find_hygge_projects, project_attribute

BIN = Path(sys.executable).parent

TRANSLATION = """\
  translation:
    key: "lake/{{ entity }}"
    group_name: bronze
    tags: {tier: bronze}
    owners: ["team:data"]
    automation_condition: "{{ dg.AutomationCondition.on_cron('0 2 * * *') }}"
"""


def _run(*command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture
def dg_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """`create-dagster project shop` with `hygge init lake_project` inside it, and the environment to run dg in."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DAGSTER_DG_UPDATE_CHECK_ENABLED": "0",  # no PyPI look-up for a newer create-dagster
        "PYTHONPATH": str(tmp_path / "shop" / "src"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    env.pop("HYGGE_PROJECT", None)
    (tmp_path / "dagster_home").mkdir()
    _run(str(BIN / "create-dagster"), "project", "shop", cwd=tmp_path, env=env)
    root = tmp_path / "shop"
    assert (root / "src" / "shop" / "defs").is_dir()  # the layout whose depth the old `../../hygge.yml` got wrong
    _run(str(BIN / "hygge"), "init", "lake_project", cwd=root, env=env)
    return root, env


@pytest.mark.slow
def test_scaffold_check_list_and_launch_with_a_translation_block(dg_project: tuple[Path, dict[str, str]]) -> None:
    root, env = dg_project
    _run("dg", "scaffold", "defs", "hygge_dagster.HyggeProjectComponent", "lake", cwd=root, env=env)
    defs_yaml = root / "src" / "shop" / "defs" / "lake" / "defs.yaml"
    written = defs_yaml.read_text()
    assert "project: '{{ context.project_root }}/lake_project/hygge.yml'" in written
    checked = _run("dg", "check", "defs", cwd=root, env=env)
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr

    defs_yaml.write_text(written.rstrip("\n") + "\n" + TRANSLATION)
    _run("dg", "check", "defs", cwd=root, env=env)
    listed = json.loads(_run("dg", "list", "defs", "--json", cwd=root, env=env).stdout)
    assets = {asset["asset_key"]: asset for asset in listed["assets"]}
    assert set(assets) == {"lake/customers", "lake/orders"}
    orders = assets["lake/orders"]
    assert orders["group_name"] == "bronze"
    assert {"key": "tier", "value": "bronze"} in orders["tags"] and {"key": "hygge/flow", "value": "sample_to_lake"} in orders[
        "tags"
    ]
    assert orders["owners"] == [{"team": "data"}]
    assert orders["automation_condition"]["label"] == "on_cron(0 2 * * *, UTC)"
    assert {check["key"] for check in listed["asset_checks"] if check["asset_key"] == "lake/orders"} >= {
        "lake/orders:row_count",
        "lake/orders:schema_drift",
    }
    assert "sample_to_lake_files_sensor" in {sensor["name"] for sensor in listed["sensors"]}

    _run("dg", "launch", "--assets", "lake/orders", cwd=root, env=env)
    lake = root / "lake_project" / "lake"
    assert pq.read_table(sorted((lake / "orders").glob("*.parquet"))).equals(sample_tables()["orders"])
    assert not (lake / "customers").exists()
    with DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"])) as instance:
        (record,) = instance.fetch_materializations(AssetKey(["lake", "orders"]), limit=10).records
        assert record.asset_materialization.metadata["hygge/destination"].value == str(lake / "orders")


@pytest.mark.slow
def test_inspect_component_describes_every_attribute(dg_project: tuple[Path, dict[str, str]]) -> None:
    root, env = dg_project
    shown = _run(
        "dg", "utils", "inspect-component", "hygge_dagster.HyggeProjectComponent", "--defs-yaml-schema", cwd=root, env=env
    )
    lines = {line.split(":", 1)[0].strip(): line for line in shown.stdout.splitlines() if "# " in line}
    for attribute in ("project", "flows", "schedules", "sensors", "executor", "translation"):
        assert attribute in lines, shown.stdout[:2000]
        description = lines[attribute].split("# ", 1)[1]
        assert description.split(": ", 1)[1].strip(), f"{attribute} has no description: {lines[attribute]}"
    assert "{{ context.project_root }}" in lines["project"] and "key_prefix" in lines["translation"]


def test_scaffolder_points_at_the_one_project_under_the_dg_root(tmp_path: Path) -> None:
    (tmp_path / "lake_project").mkdir()
    (tmp_path / "lake_project" / "hygge.yml").write_text("name: x\n")
    assert find_hygge_projects(tmp_path) == [tmp_path / "lake_project" / "hygge.yml"]
    assert project_attribute(tmp_path, None) == "{{ context.project_root }}/lake_project/hygge.yml"
    assert project_attribute(tmp_path, "lake_project") == "{{ context.project_root }}/lake_project"
    assert project_attribute(tmp_path, "./a/../lake_project/hygge.yml") == "{{ context.project_root }}/lake_project/hygge.yml"
    outside = tmp_path.parent / "elsewhere" / "hygge.yml"
    assert project_attribute(tmp_path, str(outside)) == str(outside)
    (tmp_path / "hygge.yml").write_text("name: root\n")
    assert project_attribute(tmp_path, None) == "{{ context.project_root }}/hygge.yml"  # the root's own wins


def test_scaffolder_refuses_to_guess_between_projects(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hygge.yml").write_text("name: x\n")
    with pytest.raises(
        click.UsageError, match=r"several hygge projects under .* \(a/hygge.yml, b/hygge.yml\); pick one with --project PATH"
    ):
        project_attribute(tmp_path, None)


def test_scaffolder_without_a_project_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert project_attribute(tmp_path, None) == "{{ context.project_root }}/hygge.yml"
    assert "Create the project with `hygge init NAME`" in capsys.readouterr().err
