"""bench/proctree.py measures the whole process tree: a grandchild's memory counts, the exit code comes back."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_proctree():
    spec = importlib.util.spec_from_file_location("bench_proctree", BENCH / "proctree.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


# The child allocates nothing; its child (the grandchild) touches 300 MiB, holds it for a second and exits; then the child exits 7.
GRANDPARENT = textwrap.dedent(
    """
    import subprocess, sys
    grandchild = subprocess.run([sys.executable, "-c", "import time; block = b'x' * (300 * 1024 * 1024); time.sleep(1.0)"])
    sys.exit(7 if grandchild.returncode == 0 else 1)
    """
)


def test_peak_pss_counts_a_grandchild_and_the_exit_code_comes_back() -> None:
    proctree = load_proctree()
    result = proctree.run([sys.executable, "-c", GRANDPARENT], interval=0.02)
    assert result.returncode == 7, result.stderr
    # 300 MiB held by the grandchild, plus two interpreters (about 10 MiB each); never the grandchild alone twice.
    assert 300 <= result.peak_pss_mib < 380, result.summary()
    assert result.peak_processes == 2, result.summary()
    assert result.wall_seconds >= 1.0
    assert result.cpu_seconds > 0  # the grandchild's CPU, reaped by the child, is in wait4's usage


def test_an_orphaned_grandchild_is_measured_and_killed_when_the_command_ends() -> None:
    proctree = load_proctree()
    marker = "hygge-proctree-orphan-marker"
    # The command starts a middle process that starts the holder and exits at once, so the holder is
    # reparented out of the tree: it still counts (same session) and is killed when the command ends.
    holder = f"import time; block = b'x' * (200 * 1024 * 1024); time.sleep(60)  # {marker}"
    middle = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {holder!r}])"
    command = f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {middle!r}]); time.sleep(1.5)"
    result = proctree.run([sys.executable, "-c", command], interval=0.02)
    assert result.returncode == 0, result.stderr
    assert result.peak_pss_mib >= 200, result.summary()
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(int(pid))]
    assert left == [], f"processes left running: {left}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
