"""Reads are snapshots, and files are opened one at a time (issue 9, item 4), through real ``hygge start``.

A source file rewritten in place (same size, same inode) while hygge reads it
must fail the run, naming the file and saying to re-run, with nothing published.
To rewrite it at an exact point, the ``hygge`` process gets a ``sitecustomize``
that pauses after the file's first batch until the test has rewritten it; the
rest of the process is the real ``hygge start``.

Ten thousand small source files must load under ``ulimit -n 1024`` (set with a
real rlimit on the ``hygge`` process).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .cli_support import HYGGE, hygge, output, tree
from .lake_readers import assert_one_schema_and_rows
from .support import project_yaml, write_project_at

PAUSE_HOOK = textwrap.dedent(
    """
    import os, pathlib, time
    import hygge_core.homes.parquet as home

    _original = home._read_file

    def _paused(path, handle, batch_size):
        gate = pathlib.Path(os.environ["HYGGE_TEST_GATE"])
        for number, batch in enumerate(_original(path, handle, batch_size)):
            yield batch
            if number == 0 and path.name == "source.parquet":
                (gate / "reading").touch()
                while not (gate / "go").exists():
                    time.sleep(0.02)

    home._read_file = _paused
    """
)


def version(value: int) -> pa.Table:
    return pa.table({"id": pa.array(range(2000), pa.int64()), "value": pa.array([value] * 2000, pa.int64())})


def write_fixed_size(table: pa.Table, path: Path) -> None:
    """Uncompressed, plain-encoded int64 columns: two versions of the table have the same file size."""
    pq.write_table(table, path, compression="none", use_dictionary=False, row_group_size=100)


def test_file_rewritten_in_place_while_read_fails_the_run_and_publishes_nothing(tmp_path: Path) -> None:
    project = write_project_at(tmp_path / "project", project_yaml(home={"batch_size": 100}))
    source = project / "home" / "items" / "source.parquet"
    source.parent.mkdir(parents=True)
    write_fixed_size(version(1), source)
    done = hygge("start", project=project)
    assert done.returncode == 0, output(done)
    lake = project / "lake" / "items"
    assert_one_schema_and_rows(lake, version(1))

    rewritten = tmp_path / "rewritten.parquet"
    write_fixed_size(version(2), rewritten)
    assert rewritten.stat().st_size == source.stat().st_size
    hook, gate = tmp_path / "hook", tmp_path / "gate"
    hook.mkdir()
    gate.mkdir()
    (hook / "sitecustomize.py").write_text(PAUSE_HOOK, encoding="utf-8")
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(hook), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        HYGGE_TEST_GATE=str(gate),
        DAGSTER_HOME=str(dagster_home),
        COLUMNS="400",
    )
    before = tree(project, skip=("home",))
    running = subprocess.Popen(
        [HYGGE, "start"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    while not (gate / "reading").exists():
        assert running.poll() is None, f"hygge ended before reading the file:\n{running.stdout.read() if running.stdout else ''}"
        time.sleep(0.02)
    inode = source.stat().st_ino
    with open(source, "r+b") as handle:  # in place: same inode, same size, new bytes
        handle.write(rewritten.read_bytes())
    assert source.stat().st_ino == inode
    (gate / "go").touch()
    text, _ = running.communicate()
    text = " ".join(text.split())
    assert running.returncode == 1, text
    assert f"{source} changed while hygge read it" in text
    assert "nothing was published. Re-run once the writers of that file are done" in text
    assert tree(project, skip=("home",)) == before
    assert_one_schema_and_rows(lake, version(1))

    done = hygge("start", project=project)  # the writer is done: the next run reads one consistent file
    assert done.returncode == 0, output(done)
    assert_one_schema_and_rows(lake, version(2))


def limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_ten_thousand_small_files_load_under_ulimit_1024(tmp_path: Path) -> None:
    project = write_project_at(tmp_path / "project", project_yaml(store={"row_group_rows": 100_000, "file_rows": 1_000_000}))
    folder = project / "home" / "items"
    folder.mkdir(parents=True)
    for index in range(10_000):
        pq.write_table(pa.table({"id": [index], "name": [f"row-{index}"]}), folder / f"part-{index:05d}.parquet")
    seen = subprocess.run(
        [sys.executable, "-c", "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"],
        preexec_fn=limit_open_files,
        capture_output=True,
        text=True,
        check=True,
    )
    assert seen.stdout.strip() == "1024"
    outside = tree(project, skip=("lake",))
    done = hygge("start", project=project, preexec_fn=limit_open_files)
    assert done.returncode == 0, output(done)
    assert "10,000 rows" in output(done) or "10000 rows" in output(done), output(done)
    expected = pa.table({"id": pa.array(range(10_000), pa.int64()), "name": [f"row-{i}" for i in range(10_000)]})
    assert_one_schema_and_rows(project / "lake" / "items", expected)
    assert tree(project, skip=("lake",)) == outside
