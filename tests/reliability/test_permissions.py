"""Permission denied on the source and on the destination, for real.

CI runs as root, which no file mode stops; so the failing run happens in a
child process as ``nobody`` (``setpriv``), on a project under a world-traversable
temp folder. The good version is published by root first; the child prints the
error it got; the test asserts on that message and on the destination being
byte-for-byte what it was.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import hygge_core

from .support import (
    make_table,
    project_yaml,
    read_entity,
    read_state,
    run_child,
    snapshot,
    staging_leftovers,
    write_project_at,
    write_source,
)

GOOD = make_table(range(0, 600), "good")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="REAL permission tests need root (to switch to user nobody with setpriv); not run",
)


def open_up(path: Path) -> None:
    """Let anyone write under ``path``, as on a shared lake (the lock file included)."""
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o777)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666)


def published_project(shared_dir: Path, files: dict[str, slice]) -> tuple[Path, Path, dict[str, str]]:
    """A project whose ``items`` entity root has published from ``files`` (path under home/items -> rows)."""
    root = write_project_at(shared_dir / "project", project_yaml())
    for name, rows in files.items():
        write_source(root / "home" / "items" / name, GOOD[rows])
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("files/items"))
    assert result.published
    lake = root / "lake" / "items"
    assert read_entity(lake).equals(GOOD)
    return root, lake, snapshot(lake)


def run_as_nobody(root: Path) -> dict:
    outcome = run_child("", root, "files/items", unprivileged=True)
    assert outcome.returncode == 0, outcome.stderr
    return outcome.result


def run_as_root(root: Path) -> hygge_core.EntityResult:
    return hygge_core.run_entity(hygge_core.load_project(root).entity("files/items"))


def assert_untouched(lake: Path, before: dict[str, str]) -> None:
    assert snapshot(lake) == before
    assert read_entity(lake).equals(GOOD)
    assert staging_leftovers(lake) == []


def test_unreadable_source_file(shared_dir: Path) -> None:
    root, lake, before = published_project(shared_dir, {"a.parquet": slice(0, 300), "b.parquet": slice(300, None)})
    open_up(root / "lake")
    denied = root / "home" / "items" / "b.parquet"
    denied.chmod(0o000)
    result = run_as_nobody(root)
    assert result["error_type"] == "HomeError"
    assert "permission denied" in result["error"] and str(denied) in result["error"]
    assert_untouched(lake, before)


def test_unreadable_source_folder(shared_dir: Path) -> None:
    root, lake, before = published_project(shared_dir, {"a.parquet": slice(0, None)})
    open_up(root / "lake")
    denied = root / "home" / "items"
    denied.chmod(0o700)
    result = run_as_nobody(root)
    assert result["error_type"] == "HomeError"
    assert "permission denied" in result["error"] and str(denied) in result["error"]
    assert_untouched(lake, before)


def test_unreadable_source_subfolder_is_an_error_not_a_silent_skip(shared_dir: Path) -> None:
    """Skipping a folder we cannot list would publish a full drop without its rows: data lost quietly."""
    root, lake, before = published_project(shared_dir, {"a.parquet": slice(0, 300), "2024/b.parquet": slice(300, None)})
    open_up(root / "lake")
    denied = root / "home" / "items" / "2024"
    denied.chmod(0o700)
    result = run_as_nobody(root)
    assert result.get("error_type") == "HomeError", result
    assert "permission denied" in result["error"] and str(denied) in result["error"]
    assert_untouched(lake, before)


def test_destination_folder_not_writable(shared_dir: Path) -> None:
    root, lake, before = published_project(shared_dir, {"a.parquet": slice(0, None)})
    write_source(root / "home" / "items" / "b.parquet", make_table(range(600, 700), "new"))
    result = run_as_nobody(root)  # lake/ and its staging belong to root, mode 0755
    assert result["error_type"] == "StoreError"
    assert "permission denied" in result["error"]
    assert str(root / "lake") in result["error"]  # where to grant access
    assert_untouched(lake, before)


def test_publish_denied_after_writing_cleans_its_staging(shared_dir: Path) -> None:
    """Staging is writable, so every file is written; only the final swap into lake/ is refused."""
    root, lake, before = published_project(shared_dir, {"a.parquet": slice(0, None)})
    write_source(root / "home" / "items" / "b.parquet", make_table(range(600, 700), "new"))
    open_up(root / "lake" / ".hygge-staging")
    result = run_as_nobody(root)
    assert result["error_type"] == "StoreError"
    assert "permission denied" in result["error"] and "publish" in result["error"]
    assert_untouched(lake, before)

    # Once the user is allowed to publish, the next run publishes the new data.
    open_up(root / "lake")
    result = run_as_nobody(root)
    assert result == {"status": "success", "rows": 700}
    assert read_entity(lake).num_rows == 700
    assert staging_leftovers(lake) == []


def test_failure_to_remove_the_old_version_does_not_fail_a_published_run(shared_dir: Path) -> None:
    """Once the exchange has happened the new data is live: a later cleanup error must not report a failed,
    "unchanged" run. A sticky staging folder makes the cleanup fail for real: after the exchange the old
    version sits in staging owned by root, which nobody may then rename."""
    root, lake, _ = published_project(shared_dir, {"a.parquet": slice(0, None)})
    new_rows = make_table(range(600, 700), "new")
    write_source(root / "home" / "items" / "b.parquet", new_rows)
    open_up(root / "lake")
    (root / "lake" / ".hygge-staging").chmod(0o1777)
    result = run_as_nobody(root)
    assert result == {"status": "success", "rows": 700}
    assert read_entity(lake).equals(pa.concat_tables([GOOD, new_rows]))
    assert read_state(lake)["rows_last_run"] == 700

    # What the cleanup could not remove is removed by the next run's recovery.
    result = run_as_root(root)
    assert result.status == "success" and result.rows == 700
    assert staging_leftovers(lake) == []
