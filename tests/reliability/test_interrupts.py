"""Interrupts are not errors to retry (issue 9, item 5), through real ``hygge start`` processes.

An entity with a published version is reloaded from a source big enough that the
run is still writing when the signal comes: the test waits until the staging
folder holds a data file, then sends SIGINT or SIGTERM to the ``hygge`` process
(as ``kill`` does) or SIGINT to its whole process group (as Ctrl-C in a terminal
does, step processes included). For the multiprocess executor (forkserver step
processes) and the in-process one (``--concurrency 1``), the process must exit
130 or 143, report the entity as "interrupted: previous version kept", leave
nothing in staging but the lock file, leave the previous version byte for byte,
and leave the Dagster run CANCELED or FAILURE in the project's instance, never
STARTED. Before this rule, an in-process entity was retried after SIGINT and
``hygge start`` printed OK and exited 0.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import subprocess
import termios
import textwrap
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import DagsterRunStatus

import hygge_core
from hygge_cli.instance import open_instance

from .cli_support import HYGGE
from .support import STAGING, make_table, project_yaml, read_entity, snapshot, staging_leftovers, write_project_at, write_source

BIG_ROWS = 3_000_000  # seconds of writing in tiny files: the signal always lands mid-write


def big_table(rows: int) -> pa.Table:
    ids = pa.array(range(rows), pa.int64())
    return pa.table({"id": ids, "tag": pc.binary_join_element_wise("new-", pc.cast(ids, pa.string()), "")})


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """``files/items`` published once (1,000 "old" rows), its source then replaced by a big "new" one.

    In its own Dagster step, or in a step shared by its flow (``dagster: {step: flow}``),
    where it loads on a worker thread that the signal never reaches directly.
    """
    mode = getattr(request, "param", "entity")  # entity | flow | lanes (an own step, the store writing 3 files at once)
    flow = {"retries": {"max": 2, "delay": "0s"}, "dagster": {"step": "flow" if mode == "flow" else "entity"}}
    lanes = {"parallel_files": 3} if mode == "lanes" else {}
    text = project_yaml(store={"row_group_rows": 2000, "file_rows": 10_000, **lanes}, flow=flow)
    # Explicit, so the one-entity run uses step processes when --concurrency allows (else hygge runs one step in process).
    root = write_project_at(tmp_path / "project", text + "dagster: {executor: multiprocess}\n")
    source = root / "home" / "items" / "part-0.parquet"
    write_source(source, make_table(range(1000), "old"))
    assert hygge_core.run_entity(hygge_core.load_project(root).entity("files/items")).published
    pq.write_table(big_table(BIG_ROWS), source, row_group_size=5000)
    return root


def start_hygge(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Path]:
    """``hygge start ARGS`` in its own session (so a group signal reaches only it and its step processes)."""
    dagster_home = project.parent / "dagster-home"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    full_env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    full_env |= {"COLUMNS": "400", "DAGSTER_HOME": str(dagster_home), **(env or {})}
    process = subprocess.Popen(
        [HYGGE, "start", *args],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return process, dagster_home


def wait_until_writing(process: subprocess.Popen[str], entity_dir: Path, files: int = 1) -> None:
    """Poll until the run's staging holds ``files`` data files (fail with the output if the process ends first)."""
    staging = entity_dir.parent / STAGING
    while len(list(staging.rglob("*.parquet"))) < files:
        if process.poll() is not None:
            pytest.fail(
                f"hygge start ended (exit {process.returncode}) before writing:\n{process.stdout.read() if process.stdout else ''}"
            )
        time.sleep(0.02)  # polling for the staging, not a time limit


CASES = [
    pytest.param("2", signal.SIGINT, "process", id="multiprocess-SIGINT"),
    pytest.param("2", signal.SIGINT, "group", id="multiprocess-SIGINT-to-group"),
    pytest.param("2", signal.SIGTERM, "process", id="multiprocess-SIGTERM"),
    pytest.param("1", signal.SIGINT, "process", id="in-process-SIGINT"),
    pytest.param("1", signal.SIGINT, "group", id="in-process-SIGINT-to-group"),
    pytest.param("1", signal.SIGTERM, "process", id="in-process-SIGTERM"),
]


STEP_MODES = pytest.mark.parametrize("project", ["entity", "flow"], ids=["own-step", "shared-step"], indirect=True)


@STEP_MODES
@pytest.mark.parametrize(("concurrency", "signum", "target"), CASES)
def test_a_signal_mid_write_stops_the_run_and_keeps_the_previous_version(
    project: Path, concurrency: str, signum: signal.Signals, target: str
) -> None:
    assert_interrupted_mid_write(project, concurrency, signum, target)


@pytest.mark.parametrize("project", ["lanes"], indirect=True)
@pytest.mark.parametrize(("concurrency", "signum", "target"), [CASES[1], CASES[3], CASES[5]])
def test_a_signal_while_several_files_are_written_at_once_keeps_the_previous_version(
    project: Path, concurrency: str, signum: signal.Signals, target: str
) -> None:
    """``parallel_files``: the store's lanes stop, their open files go, and nothing of them is published."""
    assert_interrupted_mid_write(project, concurrency, signum, target, files=3)


def assert_interrupted_mid_write(project: Path, concurrency: str, signum: signal.Signals, target: str, files: int = 1) -> None:
    entity_dir = project / "lake" / "items"
    before = snapshot(entity_dir)
    old_rows = read_entity(entity_dir).to_pylist()
    process, dagster_home = start_hygge(project, "--concurrency", concurrency)
    wait_until_writing(process, entity_dir, files)
    if target == "group":
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    out, _ = process.communicate()

    assert process.returncode == 128 + signum, out
    assert "files/items: interrupted: previous version kept" in out
    assert f"{signum.name}: stopping; entities being written keep their previous version" in out, out
    assert "INTERRUPTED: 0 of 1 entities succeeded" in out
    assert "OK:" not in out and "Traceback" not in out and "DagsterExecutionInterruptedError" not in out
    assert staging_leftovers(entity_dir) == []
    assert sorted(p.name for p in (entity_dir.parent / STAGING).iterdir()) == ["items.lock"]
    assert snapshot(entity_dir) == before  # every file of the previous version, state included, byte for byte
    assert read_entity(entity_dir).to_pylist() == old_rows
    assert [row["tag"] for row in old_rows] == [f"old-{i}" for i in range(1000)]
    with open_instance(dagster_home) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].status in (DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE), runs[0].status
        step_starts = [
            entry
            for entry in instance.all_logs(runs[0].run_id)
            if entry.dagster_event_type is not None and entry.dagster_event_type.value == "STEP_START"
        ]
        assert len(step_starts) == 1  # never retried


def test_after_an_interrupt_the_next_run_publishes_the_new_version(project: Path) -> None:
    """An interrupted run leaves nothing that stops the next one: it loads the whole new source once."""
    entity_dir = project / "lake" / "items"
    process, _ = start_hygge(project, "--concurrency", "1")
    wait_until_writing(process, entity_dir)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate()
    assert process.returncode == 130, out
    source = project / "home" / "items" / "part-0.parquet"
    pq.write_table(big_table(20_000), source, row_group_size=5000)
    process, _ = start_hygge(project, "--concurrency", "1")
    out, _ = process.communicate()
    assert process.returncode == 0, out
    table = pq.read_table(sorted(entity_dir.glob("*.parquet"))).sort_by("id")
    assert table.column("id").to_pylist() == list(range(20_000))
    assert table.column("tag").to_pylist() == [f"new-{i}" for i in range(20_000)]
    assert staging_leftovers(entity_dir) == []


class Terminal:
    """A real pseudo-terminal with ``hygge start`` in its foreground: Ctrl-C is the byte 0x03 typed into it."""

    def __init__(self, project: Path, *args: str) -> None:
        dagster_home = project.parent / "dagster-home"
        dagster_home.mkdir(exist_ok=True)
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
        env |= {"COLUMNS": "160", "LINES": "40", "TERM": "xterm-256color", "DAGSTER_HOME": str(dagster_home)}
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [HYGGE, "start", *args],
            cwd=project,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # the terminal becomes its controlling tty
        )
        os.close(slave)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the last process holding the terminal ended
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def press_ctrl_c(self) -> None:
        os.write(self.master, b"\x03")

    def wait(self) -> tuple[int, str]:
        code = self.process.wait()
        self._reader.join()
        os.close(self.master)
        text = b"".join(self._chunks).decode("utf-8", errors="replace")
        return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", text)


@pytest.mark.parametrize("concurrency", ["2", "1"], ids=["multiprocess", "in-process"])
def test_ctrl_c_on_a_terminal_shows_the_entity_interrupted(project: Path, concurrency: str) -> None:
    """What a person sees (issue 13, item 2): the stop announced, the entity interrupted, no traceback, exit 130."""
    entity_dir = project / "lake" / "items"
    before = snapshot(entity_dir)
    terminal = Terminal(project, "--concurrency", concurrency)
    wait_until_writing(terminal.process, entity_dir)
    terminal.press_ctrl_c()
    code, screen = terminal.wait()
    assert code == 130, screen
    assert "SIGINT: stopping; entities being written keep their previous version" in screen
    assert "stopped files/items: interrupted: previous version kept" in screen
    assert re.search(r"files/items\s*│\s*interrupted\s*│.*│\s*previous version kept\s*│", screen), screen  # the table's reason
    assert "INTERRUPTED: 0 of 1 entities succeeded" in screen  # the closing line
    assert "Traceback" not in screen and "DagsterExecutionInterruptedError" not in screen and "not_run" not in screen, screen
    assert snapshot(entity_dir) == before
    assert staging_leftovers(entity_dir) == []


STALL_HOOK = textwrap.dedent(
    """
    import os, pathlib, time
    import hygge_core.homes.parquet as home

    _original = home._read_file

    def _stalled(path, handle, batch_size):
        for batch in _original(path, handle, batch_size):
            yield batch
            (pathlib.Path(os.environ["HYGGE_TEST_GATE"]) / "stalled").touch()
            while True:  # a source that stops answering: a slow query, a hung network share
                time.sleep(1)

    home._read_file = _stalled
    """
)


@STEP_MODES
@pytest.mark.parametrize(
    ("concurrency", "signum"),
    [pytest.param("2", signal.SIGTERM, id="multiprocess-SIGTERM"), pytest.param("1", signal.SIGINT, id="in-process-SIGINT")],
)
def test_a_signal_stops_a_run_whose_source_has_stalled(
    project: Path, tmp_path: Path, concurrency: str, signum: signal.Signals
) -> None:
    """The run does not wait for the source's next batch: the reader thread is let go, the staging removed."""
    entity_dir = project / "lake" / "items"
    before = snapshot(entity_dir)
    hook, gate = tmp_path / "hook", tmp_path / "gate"
    hook.mkdir()
    gate.mkdir()
    (hook / "sitecustomize.py").write_text(STALL_HOOK, encoding="utf-8")
    python_path = os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    process, dagster_home = start_hygge(
        project, "--concurrency", concurrency, env={"PYTHONPATH": python_path, "HYGGE_TEST_GATE": str(gate)}
    )
    wait_until_writing(process, entity_dir)
    while not (gate / "stalled").exists():
        assert process.poll() is None
        time.sleep(0.02)  # polling for the stall, not a time limit
    process.send_signal(signum)
    out, _ = process.communicate()
    assert process.returncode == 128 + signum, out
    assert "files/items: interrupted: previous version kept" in out
    assert snapshot(entity_dir) == before
    assert staging_leftovers(entity_dir) == []
    with open_instance(dagster_home) as instance:
        assert [run.status for run in instance.get_runs()] in ([DagsterRunStatus.CANCELED], [DagsterRunStatus.FAILURE])
