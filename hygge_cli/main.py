"""Argument parsing and dispatch. Each command lives in its own module."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from hygge_core.errors import ConfigError, HyggeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hygge", description="Move tables into a Parquet lake, one Dagster asset per table.")
    parser.add_argument("--version", action="version", version=f"hygge {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create a project that runs as is")
    init.add_argument("name", help="project name; the folder NAME is created")
    init.add_argument("--force", action="store_true", help="overwrite an existing hygge.yml")

    start = commands.add_parser("start", help="run the project's entities (through its Dagster assets)")
    _project_option(start)
    start.add_argument(
        "--flow", action="append", default=[], metavar="FLOW", help="only these flows (repeatable, comma-separated)"
    )
    start.add_argument(
        "--entity", action="append", default=[], metavar="FLOW/ENTITY", help="only these entities (repeatable, comma-separated)"
    )
    mode = start.add_mutually_exclusive_group()
    mode.add_argument(
        "--full-drop", dest="run_type", action="store_const", const="full_drop", help="replace every selected entity"
    )
    mode.add_argument("--incremental", dest="run_type", action="store_const", const="incremental", help="append only what is new")
    start.add_argument(
        "--partition",
        default=None,
        metavar="KEY",
        help="time partition to load (2024-01-31, or 2024-01-31-13:00 hourly) of entities with time_partitions; "
        "default: the latest complete one",
    )
    start.add_argument("--concurrency", type=int, default=None, help="entities at once (default: concurrency: in hygge.yml)")
    start.add_argument(
        "--dry-run", action="store_true", help="show what would run, from where, to where, in which mode; write nothing"
    )
    start.add_argument("--log-format", choices=["text", "json"], default="text", help="json: one event per line")
    loudness = start.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="also show engine log lines")
    loudness.add_argument("-q", "--quiet", action="store_true", help="only failures and the summary")

    debug = commands.add_parser("debug", help="validate the configuration and test every connection and path")
    _project_option(debug)

    dev = commands.add_parser("dev", help="start the Dagster UI for the project")
    _project_option(dev)
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    return parser


def installed_version() -> str:
    """The version pip installed (the package metadata), so it can never drift from pyproject.toml."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hygge")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed)"


def _project_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-p", "--project", default=None, metavar="PATH", help="project folder or YAML file (default: find hygge.yml upwards)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "init":
            from hygge_cli.init import run_init

            return run_init(args)
        if args.command == "start":
            from hygge_cli.start import run_start

            return run_start(args)
        if args.command == "debug":
            from hygge_cli.debug import run_debug

            return run_debug(args)
        if args.command == "dev":
            from hygge_cli.dev import run_dev

            return run_dev(args)
    except ConfigError as error:
        print("hygge: configuration problems:" if len(error.problems) > 1 else "hygge: configuration problem:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except HyggeError as error:
        print(f"hygge: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        from hygge_cli.signals import Interrupted, exit_code

        print("hygge: interrupted; nothing was half-published", file=sys.stderr)
        return exit_code(stop.signum) if isinstance(stop, Interrupted) else 130
    raise AssertionError(f"unhandled command {args.command}")


def console_main() -> None:
    """The ``hygge`` script: ``main``, then an immediate exit once output is flushed.

    Everything hygge wrote is committed (and fsynced) before ``main`` returns; what the
    interpreter would still do is tear down Dagster's modules and its multiprocessing
    forkserver, which took 1.5-2.5 s after the summary was printed. The forkserver ends on
    its own when this process is gone.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe must not turn success into a traceback
            stream.flush()
    logging.shutdown()
    os._exit(code)


def configure_logging(*, verbose: bool) -> None:
    """Engine log lines go to stderr only with -v; progress and results are the reporter's job."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("hygge")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
