"""A store owns only what it created (issue 9, item 1), proven through real ``hygge`` processes.

Every refusal asserts the message and that nothing outside the lake changed: the
full listing and content of the project folder, and of a symlink's target, are
compared before and after the run.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import yaml

from .cli_support import hygge, output, tree
from .support import make_table, project_yaml, read_entity, read_state, write_project_at, write_source

ROWS = make_table(range(0, 300), "good")


def one_entity_flow(**project: object) -> str:
    """A flow without ``entities:``: one entity that reads ``home.path`` and writes ``store.path`` themselves."""
    config = yaml.safe_load(project_yaml(**project))  # type: ignore[arg-type]
    del config["flows"]["files"]["entities"]
    return yaml.safe_dump(config, sort_keys=False)


def project_with_source(root: Path, *, single: bool = False, **project: object) -> Path:
    write_project_at(root, one_entity_flow(**project) if single else project_yaml(**project))  # type: ignore[arg-type]
    write_source(root / "home" / "items" / "a.parquet", ROWS)
    (root / "notes.md").write_text("the user's own notes\n", encoding="utf-8")
    return root


def refused(project: Path, *fragments: str, args: tuple[str, ...] = ("start",), env: dict[str, str] | None = None) -> str:
    done = hygge(*args, project=project, env=env)
    text = output(done)
    assert done.returncode != 0, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def test_store_path_that_is_the_project_folder_is_refused_and_nothing_is_deleted(tmp_path: Path) -> None:
    # A flow without `entities:` is one entity that writes `store.path` itself: here, the project folder.
    project = project_with_source(tmp_path / "project", single=True, home={"path": "home/items"}, store={"path": "."})
    before = tree(project)
    refused(project, f"refusing to use {project} as an entity folder", "it is the project folder")
    assert tree(project) == before


def test_store_path_empty_after_env_expansion_is_refused(tmp_path: Path) -> None:
    project = project_with_source(tmp_path / "project", single=True, home={"path": "home/items"}, store={"path": "${STORE}"})
    before = tree(project)
    refused(project, "refusing to use", "it is the project folder", env={"STORE": ""})
    assert tree(project) == before


def test_store_path_that_contains_the_project_or_the_home_folder_is_refused(tmp_path: Path) -> None:
    project = project_with_source(tmp_path / "project", single=True, home={"path": "home/items"}, store={"path": ".."})
    before, around = tree(project), tree(tmp_path, skip=("project-dagster-home",))
    refused(project, f"refusing to use {tmp_path} as an entity folder", "it contains the project folder")
    assert tree(project) == before and tree(tmp_path, skip=("project-dagster-home",)) == around

    user_home = tmp_path / "someone"
    (user_home / "documents").mkdir(parents=True)
    (user_home / "documents" / "cv.txt").write_text("mine\n", encoding="utf-8")
    write_project_at(project, one_entity_flow(home={"path": "home/items"}, store={"path": str(user_home)}))
    home_before = tree(user_home)
    refused(project, f"refusing to use {user_home} as an entity folder", "the user's home folder", env={"HOME": str(user_home)})
    assert tree(user_home) == home_before


def test_hygge_debug_refuses_the_filesystem_root(tmp_path: Path) -> None:
    # Only `debug` here: it checks the store without writing, so a broken guard cannot harm the machine.
    project = project_with_source(tmp_path / "project", single=True, home={"path": "home/items"}, store={"path": "/"})
    before = tree(project)
    refused(project, "refusing to use / as an entity folder", "the filesystem root", args=("debug",))
    assert tree(project) == before


def test_symlinked_entity_folder_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    project = project_with_source(tmp_path / "project")
    target = tmp_path / "elsewhere"
    (target / "keep").mkdir(parents=True)
    (target / "keep" / "data.txt").write_text("not hygge's\n", encoding="utf-8")
    (project / "lake").mkdir()
    (project / "lake" / "items").symlink_to(target)
    before, target_before = tree(project), tree(target)
    refused(project, f"refusing to write the entity folder {project / 'lake' / 'items'}", f"symbolic link to {target}")
    assert tree(project) == before
    assert tree(target) == target_before


def test_symlink_to_a_hygge_entity_is_refused_too(tmp_path: Path) -> None:
    # A link to a real hygge entity folder: following it would publish elsewhere than configured.
    project = project_with_source(tmp_path / "project")
    assert hygge("start", project=project).returncode == 0
    real = tmp_path / "moved-items"
    (project / "lake" / "items").rename(real)
    (project / "lake" / "items").symlink_to(real)
    (project / "lake" / ".hygge-staging").rename(tmp_path / "old-staging")
    before, target_before = tree(project), tree(real)
    refused(project, "symbolic link to", "never writes through a link")
    assert tree(project) == before and tree(real) == target_before


def test_symlinked_staging_folder_is_refused(tmp_path: Path) -> None:
    project = project_with_source(tmp_path / "project")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious.txt").write_text("keep\n", encoding="utf-8")
    (project / "lake").mkdir()
    (project / "lake" / ".hygge-staging").symlink_to(target)
    before, target_before = tree(project), tree(target)
    refused(project, f"refusing to write the staging folder {project / 'lake' / '.hygge-staging'}", "symbolic link")
    assert tree(project) == before and tree(target) == target_before


def test_folder_that_is_not_hygges_is_refused_naming_what_it_holds(tmp_path: Path) -> None:
    project = project_with_source(tmp_path / "project")
    foreign = project / "lake" / "items"
    (foreign / "reports").mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine\n", encoding="utf-8")
    (foreign / "reports" / "q1.csv").write_text("a,b\n", encoding="utf-8")
    before = tree(project)
    refused(
        project, f"refusing to write to {foreign}", "no _hygge/state.json", "it holds notes.txt, reports/", "Nothing was changed"
    )
    assert tree(project) == before
    refused(project, "no _hygge/state.json", "it holds notes.txt", args=("debug",))
    assert tree(project) == before


def test_empty_folder_and_hygge_folder_are_written(tmp_path: Path) -> None:
    project = project_with_source(tmp_path / "project")
    (project / "lake" / "items").mkdir(parents=True)
    before = tree(project, skip=("lake",))
    done = hygge("start", project=project)
    assert done.returncode == 0, output(done)
    assert read_entity(project / "lake" / "items").equals(ROWS)
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 10), "next"))
    before = tree(project, skip=("lake", "home"))
    done = hygge("start", project=project)
    assert done.returncode == 0, output(done)
    assert read_entity(project / "lake" / "items").column("tag").to_pylist() == [f"next-{i}" for i in range(10)]
    assert read_state(project / "lake" / "items")["run_type"] == "full_drop"
    assert tree(project, skip=("lake", "home")) == before
    assert isinstance(ROWS, pa.Table)
