"""``hygge debug``: every configuration problem at once, the expanded plan, and real connection checks."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from hygge_cli.plan_text import plan_lines
from hygge_core.errors import ConfigError, HyggeError
from hygge_core.loading import load_project


def run_debug(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    try:
        project = load_project(args.project)
    except ConfigError as error:
        console.print(f"[red]✗[/red] configuration: {len(error.problems)} problem(s)")
        for problem in error.problems:
            console.print(f"  - {escape(problem)}")
        return 2
    console.print(
        f"[green]✓[/green] configuration: {project.config_file} ({len(project.flows)} flow(s), {len(project.plans)} entities)"
    )
    failures = 0
    for flow in project.flows:
        console.print(f"\n[bold]flow {flow}[/bold]")
        for plan in project.entities(flow):
            for line in plan_lines(plan):
                console.print(escape(line))
            for label, check in (("home", plan.create_home().check), ("store", plan.create_store().check)):
                try:
                    console.print(f"      [green]✓[/green] {label}: {escape(check())}")
                except HyggeError as error:
                    failures += 1
                    console.print(f"      [red]✗[/red] {label}: {escape(str(error))}")
    console.print(f"\n{'[red]' + str(failures) + ' check(s) failed[/red]' if failures else '[green]all checks passed[/green]'}")
    return 1 if failures else 0
