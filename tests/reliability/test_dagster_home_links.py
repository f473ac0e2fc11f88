"""Symbolic links inside a project's Dagster home: hygge never writes through them.

``hygge start`` writes three files of its own in ``<project>/.dagster``: ``dagster.yaml`` (only when missing),
the instance lock and ``hygge-start.log`` (rewritten each run). A link in their place would have hygge
create or truncate a file outside the home; each is refused with an error naming the link.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hygge_cli.instance import LOCK_FILE, SETTINGS, open_instance, project_dagster_home
from hygge_core.errors import HyggeError
from tests.reliability.cli_support import HYGGE, output, tree


def test_a_dangling_settings_link_is_refused_and_its_target_not_created(tmp_path: Path):
    home = tmp_path / "project" / ".dagster"
    home.mkdir(parents=True)
    target = tmp_path / "elsewhere" / "dagster.yaml"
    target.parent.mkdir()
    (home / "dagster.yaml").symlink_to(target)
    with pytest.raises(HyggeError) as caught:
        project_dagster_home(tmp_path / "project")
    assert f"{home / 'dagster.yaml'} is a symbolic link to {target}, which does not exist" in str(caught.value)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_a_dangling_home_link_is_refused(tmp_path: Path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / ".dagster").symlink_to(tmp_path / "gone")
    with pytest.raises(HyggeError, match=r"\.dagster is a symbolic link to .*gone, which does not exist"):
        project_dagster_home(tmp_path / "project")
    assert not (tmp_path / "gone").exists()


def test_a_settings_link_to_a_file_is_the_users_choice_and_kept(tmp_path: Path):
    home = tmp_path / "project" / ".dagster"
    home.mkdir(parents=True)
    shared = tmp_path / "shared.yaml"
    shared.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    (home / "dagster.yaml").symlink_to(shared)
    assert project_dagster_home(tmp_path / "project") == home
    assert shared.read_text(encoding="utf-8") == "telemetry:\n  enabled: false\n"


def test_a_new_home_gets_hygge_settings_once(tmp_path: Path):
    home = project_dagster_home(tmp_path)
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == SETTINGS
    (home / "dagster.yaml").write_text("# mine\n", encoding="utf-8")
    project_dagster_home(tmp_path)
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == "# mine\n"


def test_a_lock_file_link_is_refused_and_its_target_untouched(tmp_path: Path):
    home = project_dagster_home(tmp_path)
    victim = tmp_path / "notes.txt"
    victim.write_text("the user's notes\n", encoding="utf-8")
    (home / LOCK_FILE).symlink_to(victim)
    with pytest.raises(HyggeError, match=r"hygge-instance\.lock is a symbolic link \(to .*notes\.txt\)"):
        open_instance(home)
    assert victim.read_text(encoding="utf-8") == "the user's notes\n"


def test_hygge_start_refuses_a_log_link_and_leaves_its_target_whole(tmp_path: Path):
    """``hygge-start.log`` is truncated on every run: through a link it would empty the user's file."""
    subprocess.run([HYGGE, "init", "demo"], cwd=tmp_path, check=True, capture_output=True)
    project = tmp_path / "demo"
    victim = tmp_path / "important.txt"
    victim.write_text("keep me\n" * 100, encoding="utf-8")
    (project / ".dagster" / "hygge-start.log").symlink_to(victim)
    before = tree(project)
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME" and not key.startswith("PYTEST")}
    done = subprocess.run([HYGGE, "start"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    text = output(done)
    assert done.returncode == 1, text
    assert "hygge-start.log is a symbolic link (to " in text and "does not follow links there: remove the link" in text
    assert "Traceback" not in text
    assert victim.read_text(encoding="utf-8") == "keep me\n" * 100
    assert not (project / "lake").exists()
    after = tree(project)
    changed = {path for path in set(before) | set(after) if before.get(path) != after.get(path)}
    assert all(path.startswith(".dagster/") for path in changed), changed  # Dagster's own storage, nothing else


def test_the_dev_workspace_file_is_not_written_through_a_link(tmp_path: Path):
    from hygge_cli.dev import WORKSPACE_FILE, write_workspace

    home = project_dagster_home(tmp_path)
    victim = tmp_path / "workspace-of-mine.yaml"
    victim.write_text("load_from: []\n", encoding="utf-8")
    (home / WORKSPACE_FILE).symlink_to(victim)
    with pytest.raises(HyggeError, match="is a symbolic link"):
        write_workspace(home, config_file=tmp_path / "hygge.yml", location_name="demo")
    assert victim.read_text(encoding="utf-8") == "load_from: []\n"
    (home / WORKSPACE_FILE).unlink()
    written = write_workspace(home, config_file=tmp_path / "hygge.yml", location_name="demo")
    assert '"demo"' in written.read_text(encoding="utf-8")
