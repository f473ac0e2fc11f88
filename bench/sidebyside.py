"""Run several approaches to the same job as whole processes, interleaved, and report medians and ratios.

Why interleaved with a rotating order: the machine is shared, so load drifts during a run; rotating
the order between repetitions spreads that drift over every approach alike, and ratios taken within
one repetition (same minute, same load) are steadier than ratios of medians. Every run records the
load averages at its end, so a reader can judge how quiet the machine was.

Each approach resets its outputs and state before every run and verifies them after it (rows found
in the files it wrote), so a fast approach that wrote nothing, or the wrong thing, fails loudly.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import proctree


@dataclass
class Approach:
    """One way to do the job: a command, and how to reset and verify its outputs."""

    name: str
    label: str
    command: list[str]
    env: dict[str, str]
    reset: Callable[[], None]
    verify: Callable[[], int]  # rows written; raises when the output is wrong
    cwd: Path | None = None


@dataclass
class Measured:
    approach: str
    rep: int
    order: int
    run: proctree.TreeRun
    rows: int
    load: str


@dataclass
class Session:
    """Every measured run of one benchmark case."""

    title: str
    approaches: list[Approach]
    runs: list[Measured] = field(default_factory=list)

    def of(self, name: str) -> list[Measured]:
        return [m for m in self.runs if m.approach == name]

    def median(self, name: str, figure: Callable[[Measured], float]) -> float:
        return statistics.median(figure(m) for m in self.of(name))

    def ratio(self, name: str, peer: str, figure: Callable[[Measured], float]) -> float:
        """Median over repetitions of figure(name) / figure(peer), both from the same repetition."""
        peers = {m.rep: m for m in self.of(peer)}
        return statistics.median(figure(m) / figure(peers[m.rep]) for m in self.of(name))


def rotated(items: list, rep: int) -> list:
    shift = rep % len(items)
    return items[shift:] + items[:shift]


def measure(title: str, approaches: list[Approach], reps: int) -> Session:
    """Run every approach ``reps`` times, interleaved, each run in a fresh process tree."""
    session = Session(title, approaches)
    try:
        for rep in range(reps):
            for order, approach in enumerate(rotated(approaches, rep)):
                approach.reset()
                run = proctree.run(approach.command, env=approach.env, cwd=approach.cwd)
                load = proctree.load_averages()
                if run.returncode != 0:
                    raise RuntimeError(
                        f"{title}: {approach.label} exited {run.returncode}\ncommand: {' '.join(approach.command)}\n"
                        f"stdout tail:\n{run.stdout[-2000:]}\nstderr tail:\n{run.stderr[-4000:]}"
                    )
                rows = approach.verify()
                session.runs.append(Measured(approach.name, rep, order, run, rows, load))
                print(
                    f"[{title}] rep {rep} {approach.name}: {run.wall_seconds:.2f} s, peak tree PSS {run.peak_pss_mib:.0f} MiB "
                    f"({run.peak_processes} processes), CPU {run.cpu_seconds:.1f} s, {rows:,} rows, load {load}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:  # no run's outputs outlive the measurement, also when one fails
        for approach in approaches:
            approach.reset()
    return session


def wall(m: Measured) -> float:
    return m.run.wall_seconds


def pss(m: Measured) -> float:
    return m.run.peak_pss_mib


def cpu(m: Measured) -> float:
    return m.run.cpu_seconds


def rate(m: Measured) -> float:
    return m.rows / m.run.wall_seconds


def report(session: Session, *, peers: list[str], per: tuple[str, int] | None = None) -> str:
    """Markdown: medians per approach, speed and memory ratios to each of ``peers`` (per repetition, then the median), loads.

    Speed ratio = the peer's wall time / this approach's (above 1: faster than the peer); memory ratio = this
    approach's peak tree PSS / the peer's; CPU ratio = this approach's tree CPU seconds / the peer's (less
    sensitive to other work on the machine than wall time). ``per``: (unit, count) adds a time-per-unit column, e.g. ("table", 100).
    """
    labels = {a.name: a.label for a in session.approaches}
    lines = [f"#### {session.title}", ""]
    head = (
        "| approach | wall s | "
        + (f"ms per {per[0]} | " if per else "")
        + "rows/s | peak tree PSS MiB | tree CPU s | processes at peak |"
    )
    head += "".join(f" speed vs {labels[p]} | memory vs {labels[p]} | CPU vs {labels[p]} |" for p in peers)
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for approach in session.approaches:
        name = approach.name
        row = f"| {approach.label} | {session.median(name, wall):.2f} | "
        row += f"{session.median(name, wall) / per[1] * 1000:.0f} | " if per else ""
        row += (
            f"{session.median(name, rate):,.0f} | {session.median(name, pss):.0f} | {session.median(name, cpu):.1f} "
            f"| {max(m.run.peak_processes for m in session.of(name))} |"
        )
        row += "".join(
            f" {session.ratio(p, name, wall):.2f}× | {session.ratio(name, p, pss):.2f}× | {session.ratio(name, p, cpu):.2f}× |"
            for p in peers
        )
        lines.append(row)
    reps = max(m.rep for m in session.runs) + 1
    lines += [
        "",
        f"{reps} interleaved repetitions, order rotated; medians. Each run: wall s / peak tree PSS MiB / load averages (1, 5, 15 min) at its end:",
        "",
    ]
    lines.append("| rep | " + " | ".join(a.label for a in session.approaches) + " |")
    lines.append("|---" * (len(session.approaches) + 1) + "|")
    for rep in range(reps):
        cells = []
        for approach in session.approaches:
            m = next(m for m in session.of(approach.name) if m.rep == rep)
            cells.append(f"{m.run.wall_seconds:.1f} s / {m.run.peak_pss_mib:.0f} MiB / {m.load}")
        lines.append(f"| {rep} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
