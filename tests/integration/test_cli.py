"""The hygge CLI driven as a user would: a real `hygge` process on a real project in a temp folder."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hygge_cli.scaffold import sample_tables

REPO_ROOT = Path(__file__).resolve().parents[2]
HYGGE = str(Path(sys.executable).with_name("hygge"))


def hygge(*args: str, cwd: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DAGSTER_HOME", None)
    completed = subprocess.run([HYGGE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert completed.returncode == 0, f"hygge {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def lake_snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".hygge-staging" not in p.parts
    }


def read_entity(folder: Path):
    return pq.read_table(sorted(folder.glob("*.parquet")))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    hygge("init", "demo", cwd=tmp_path, check=True)
    return tmp_path / "demo"


def test_init_then_start_moves_the_sample(project: Path):
    completed = hygge("start", cwd=project, check=True)
    expected = sample_tables()
    for entity in ("customers", "orders"):
        assert read_entity(project / "lake" / entity).equals(expected[entity])
    assert "2 of 2 entities succeeded" in completed.stdout


def test_init_refuses_to_overwrite_without_force(project: Path):
    again = hygge("init", "demo", cwd=project.parent)
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr
    assert hygge("init", "demo", "--force", cwd=project.parent).returncode == 0


def test_second_start_is_idempotent(project: Path):
    hygge("start", cwd=project, check=True)
    first = {k: v for k, v in lake_snapshot(project / "lake").items() if "_hygge" not in k}
    hygge("start", cwd=project, check=True)
    second = {k: v for k, v in lake_snapshot(project / "lake").items() if "_hygge" not in k}
    assert len(second) == len(first) == 2  # one data file per entity, replaced, not added
    assert read_entity(project / "lake" / "orders").equals(sample_tables()["orders"])


def test_dry_run_writes_nothing(project: Path):
    before = lake_snapshot(project)
    completed = hygge("start", "--dry-run", cwd=project, check=True)
    assert lake_snapshot(project) == before
    assert not (project / "lake").exists()
    assert "sample_to_lake/orders  [full_drop]" in completed.stdout
    assert f"from parquet {project / 'data' / 'home' / 'orders'}" in completed.stdout
    assert "nothing was read or written" in completed.stdout


def test_entity_option_runs_only_that_entity(project: Path):
    hygge("start", "--entity", "sample_to_lake/orders", cwd=project, check=True)
    assert (project / "lake" / "orders").is_dir()
    assert not (project / "lake" / "customers").exists()


def test_broken_flow_fails_alone_and_is_named_in_the_summary(project: Path):
    config = project / "hygge.yml"
    config.write_text(
        config.read_text()
        + "  broken:\n    home: {type: parquet, path: data/missing}\n    store: {type: parquet, path: lake/broken}\n"
    )
    completed = hygge("start", cwd=project)
    assert completed.returncode == 1
    assert (project / "lake" / "orders").is_dir() and (project / "lake" / "customers").is_dir()
    assert not (project / "lake" / "broken" / "broken").exists()
    assert "FAILED" in completed.stdout and "broken/broken" in completed.stdout
    assert "data/missing does not exist" in completed.stdout
    assert completed.stderr == ""  # Dagster's own chatter goes to a log file, named in the output
    assert "Dagster's own log of this run:" in completed.stdout and (project / ".dagster" / "hygge-start.log").stat().st_size > 0


def test_debug_reports_three_mistakes_with_file_and_key(project: Path):
    config = project / "hygge.yml"
    text = config.read_text()
    text = text.replace("concurrency: 2", "concurency: 2")
    text = text.replace("      type: parquet\n      path: lake", "      type: parquet\n      path: lake\n      compresion: zstd")
    text = text.replace("run_type: full_drop", "run_type: fulldrop")
    config.write_text(text)
    completed = hygge("debug", cwd=project)
    assert completed.returncode == 2
    out = completed.stdout
    assert "3 problem(s)" in out
    assert "hygge.yml: concurency: unknown key 'concurency' (did you mean 'concurrency'?)" in out
    assert "hygge.yml: flows.sample_to_lake.run_type:" in out and "fulldrop" in out
    assert "flows.sample_to_lake.store.compresion: unknown key 'compresion' (did you mean 'compression'?)" in out


def test_debug_checks_paths_for_real(project: Path):
    completed = hygge("debug", cwd=project, check=True)
    assert "1 readable Parquet file(s)" in completed.stdout and "all checks passed" in completed.stdout
    (project / "data" / "home" / "orders" / "orders.parquet").write_bytes(b"not parquet")
    broken = hygge("debug", cwd=project)
    assert broken.returncode == 1 and "orders.parquet is not a valid Parquet file" in broken.stdout


def test_readme_quick_start_runs_verbatim(tmp_path: Path):
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", readme, re.S)
    assert block, "README lost its quick-start block"
    script = "set -euo pipefail\n" + block.group(1)
    env = {**os.environ, "PATH": f"{Path(HYGGE).parent}{os.pathsep}{os.environ['PATH']}"}
    completed = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert read_entity(tmp_path / "my_lake" / "lake" / "orders").num_rows == 1000


def test_plain_lines_when_not_a_terminal(project: Path):
    completed = hygge("start", cwd=project, check=True)
    lines = completed.stdout.strip().splitlines()
    assert all(re.match(r"^\d\d:\d\d:\d\d ", line) for line in lines), lines
    assert "\x1b[" not in completed.stdout  # no escape codes, no bars


def test_json_log_format_is_one_event_per_line(project: Path):
    import json

    completed = hygge("start", "--log-format", "json", cwd=project, check=True)
    events = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    finished = {e["entity"]: e for e in events if e["event"] == "entity_finished"}
    assert finished["sample_to_lake/orders"]["rows"] == 1000
    assert events[-1]["event"] == "run_finished" and events[-1]["ok"] is True


def on_a_terminal(project: Path, *args: str) -> tuple[int, str]:
    """Run ``hygge`` with a pseudo-terminal as its stdin, stdout and stderr; its exit code and every byte it showed."""
    pid, fd = pty.fork()
    if pid == 0:  # child: become `hygge start` on the terminal
        os.chdir(project)
        os.environ["COLUMNS"] = "200"
        os.execv(HYGGE, [HYGGE, *args])
    output = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


def plain(text: str) -> str:
    """What the terminal shows, without its escape codes and carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", text)


def test_progress_bars_under_a_pseudo_terminal(project: Path):
    code, text = on_a_terminal(project, "start")
    assert code == 0, text
    assert "starting Dagster…" in text  # shown while Dagster loads, before any entity moves
    assert "rows/s" in text and "sample_to_lake/orders" in text
    assert "hygge run" in text  # the summary table's title
    assert "\x1b[" in text  # rendered for a terminal
    assert "reason" not in text  # the reason column is there only when something failed
    assert re.search(r"OK: 2 of 2 entities succeeded, 1,100 rows in [\d.]+s \([\d,]+ rows/s over [\d.]+s of loading", plain(text))


def test_a_failing_run_on_a_terminal_shows_the_reason_and_no_traceback(project: Path):
    (project / "data" / "home" / "orders" / "orders.parquet").write_bytes(b"not parquet at all")
    code, text = on_a_terminal(project, "start")
    screen = plain(text)
    assert code == 1, screen
    assert "Traceback" not in screen and "RUN_FAILURE" not in screen and "DagsterExecutionStepExecutionError" not in screen
    lines = screen.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("│ sample_to_lake/orders"))
    last = next(i for i, line in enumerate(lines) if line.startswith("│ total"))
    cells = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines[first:last]]
    assert cells[0][1] == "failed", cells  # the status column
    reason = "".join(row[-1] for row in cells)  # the reason column, wrapped over as many lines as it needs
    expected = "orders.parquet is not a valid Parquet file (truncated or corrupt?): Parquet magic bytes not found in footer."
    assert expected.replace(" ", "") in reason.replace(" ", ""), reason  # wrapping drops the spaces at line ends
    assert "sample_to_lake/orders: sample_to_lake/orders" not in screen  # the entity is named once
    assert "FAILED: 1 of 2 entities succeeded, 100 rows in" in screen  # the closing line
    assert "Dagster, start-up and unfinished entities" in screen


def test_run_type_overrides_append_only_new_files_then_replace(project: Path):
    import pyarrow as pa

    hygge("start", "--entity", "sample_to_lake/orders", cwd=project, check=True)
    extra = pa.table(
        {
            "order_id": pa.array([5001, 5002], pa.int64()),
            "customer_id": pa.array([1, 2], pa.int64()),
            "amount": pa.array([1.5, 2.5]),
            "ordered_at": pa.array([None, None], pa.timestamp("us")),
        }
    )
    pq.write_table(extra, project / "data" / "home" / "orders" / "late.parquet")

    hygge("start", "--incremental", "--entity", "sample_to_lake/orders", cwd=project, check=True)
    orders = read_entity(project / "lake" / "orders").sort_by("order_id")
    assert orders.num_rows == 1002 and orders.column("order_id").to_pylist()[-2:] == [5001, 5002]
    again = hygge("start", "--incremental", "--entity", "sample_to_lake/orders", "--log-format", "json", cwd=project, check=True)
    assert '"status": "skipped"' in again.stdout  # nothing new: nothing published
    assert read_entity(project / "lake" / "orders").num_rows == 1002

    hygge("start", "--full-drop", "--entity", "sample_to_lake/orders", cwd=project, check=True)
    replaced = read_entity(project / "lake" / "orders").sort_by("order_id")
    assert replaced.num_rows == 1002 and len(set(replaced.column("order_id").to_pylist())) == 1002


def test_failed_error_check_fails_the_run_and_is_named(project: Path):
    config = project / "hygge.yml"
    # customer_id is unique in customers but repeats in orders
    config.write_text(
        config.read_text().replace("    run_type: full_drop\n", "    run_type: full_drop\n    watermark: {key: customer_id}\n", 1)
    )
    completed = hygge("start", cwd=project)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert (
        "FAILED   sample_to_lake/orders: check unique_key failed: key (customer_id): 900 duplicate key row(s)" in completed.stdout
    )
    assert "success  sample_to_lake/customers" in completed.stdout
    assert read_entity(project / "lake" / "orders").num_rows == 1000  # published; the check judges it afterwards
