"""Run one command as a whole process and measure it: wall seconds, peak PSS of its whole process tree, exit code.

Why PSS over the tree, sampled from /proc: ``/usr/bin/time -v`` and ``ru_maxrss`` report the largest
single process, so they miss Dagster's forkserver and its step processes (issue 10 measured ~150 MiB
that way for a run whose tree peaked over 1 GiB). Summed RSS would count the pages a forkserver
shares with its forks once per fork; PSS splits every shared page between the processes that map it,
so the sum over the tree is what the tree really holds.

Which processes count: every descendant of the command (``/proc/*/stat`` parent links, walked afresh
at each sample) and every process still in the command's session. The command starts a new session,
so a grandchild whose parent has exited (reparented to init) is still counted, and whatever is left
in the session when the command exits is killed, so a benchmark never leaves processes behind.

    python bench/proctree.py -- hygge start -p project      # prints one JSON line
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class TreeRun:
    """What one whole-process run cost."""

    command: list[str]
    returncode: int
    wall_seconds: float
    peak_pss_bytes: int
    peak_processes: int  # processes in the tree at the sample that saw the most memory
    cpu_seconds: float  # user + system summed over every process seen in the tree, at its last sample
    samples: int
    stdout: str
    stderr: str

    @property
    def peak_pss_mib(self) -> float:
        return self.peak_pss_bytes / MIB

    def summary(self) -> dict[str, object]:
        """The figures, without the captured output."""
        record = asdict(self)
        del record["stdout"], record["stderr"]
        record["peak_pss_mib"] = round(self.peak_pss_mib, 1)
        return record


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses):
    [0] state, [1] ppid, [2] pgrp, [3] session. None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def _processes() -> dict[int, list[str]]:
    listing = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                listing[int(entry)] = fields
    return listing


def tree_pids(root: int, listing: dict[int, list[str]] | None = None) -> set[int]:
    """``root``, its descendants, and every other process in the session ``root`` leads."""
    children: dict[int, list[int]] = {}
    members = {root}
    for pid, fields in (_processes() if listing is None else listing).items():
        children.setdefault(int(fields[1]), []).append(pid)
        if int(fields[3]) == root:
            members.add(pid)
    pending = list(members)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in members:
                members.add(child)
                pending.append(child)
    return members


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (0 when it has exited or holds no memory, e.g. a zombie)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class _Sampler(threading.Thread):
    """Samples the tree's PSS until told to stop; keeps the peak."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.stopping = threading.Event()
        self.peak = self.peak_processes = self.samples = 0
        self.cpu_ticks: dict[tuple[int, str], int] = {}  # (pid, start time) -> utime + stime at the last sample

    def sample(self) -> None:
        listing = _processes()
        pids = tree_pids(self.root, listing)
        total = sum(pss_bytes(pid) for pid in pids)
        for pid in pids:
            if pid in listing:
                fields = listing[pid]
                self.cpu_ticks[(pid, fields[19])] = int(fields[11]) + int(fields[12])
        self.samples += 1
        if total > self.peak:
            self.peak, self.peak_processes = total, len(pids)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)


def _session_members(session: int) -> list[int]:
    """Live (not zombie) processes in ``session`` other than its leader."""
    return [pid for pid, fields in _processes().items() if pid != session and int(fields[3]) == session and fields[0] != "Z"]


def _kill_session(session: int, *, patience: float = 10.0) -> None:
    """Kill what the command left running in its session (only ever processes this module started), and wait
    until they are gone, so the next measurement starts with nothing of this one left."""
    deadline = time.monotonic() + patience
    while members := _session_members(session):
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {members} of session {session} survived SIGKILL for {patience:.0f} s")
        time.sleep(0.02)


def run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    interval: float = 0.05,
) -> TreeRun:
    """Run ``command`` to completion in its own session, sampling its tree's PSS every ``interval`` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
        )
        sampler = _Sampler(process.pid, interval)
        sampler.start()
        try:
            # wait4, not Popen.wait: it also gives the CPU time of the command and of the descendants it reaped.
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            wall = time.perf_counter() - started
            sampler.stopping.set()
            sampler.join()
            _kill_session(process.pid)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return TreeRun(
            command=list(command),
            returncode=process.returncode,
            wall_seconds=wall,
            peak_pss_bytes=sampler.peak,
            peak_processes=sampler.peak_processes,
            # Sampled CPU misses each process's last interval; wait4's misses what the command did not reap
            # (forkserver steps): take the larger.
            cpu_seconds=max(sum(sampler.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK"), usage.ru_utime + usage.ru_stime),
            samples=sampler.samples,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def load_averages() -> str:
    """`uptime`'s three load averages, recorded with every result (the machine is shared)."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    command = sys.argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise SystemExit("usage: python bench/proctree.py -- COMMAND [ARGS...]")
    result = run(command)
    sys.stderr.write(result.stderr[-4000:])
    print(json.dumps({**result.summary(), "load": load_averages()}))
    raise SystemExit(result.returncode)


if __name__ == "__main__":
    main()
