"""``hygge_dagster`` imports its public names on first use.

Dagster's webserver and daemon import ``hygge_dagster.event_log_storage`` (named in the
project's dagster.yaml), which runs the package's ``__init__`` first; they must not pay
for the engine (hygge_core, pyarrow) they never use.
"""

from __future__ import annotations

import subprocess
import sys

import hygge_dagster


def test_the_event_log_storage_does_not_load_the_engine() -> None:
    probe = "import sys, hygge_dagster.event_log_storage; print(sorted(m for m in ('hygge_core', 'pyarrow') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in hygge_dagster.__all__:
        value = getattr(hygge_dagster, name)
        assert value is not None
        assert name in dir(hygge_dagster)
    from hygge_dagster.code_location import build_definitions

    assert hygge_dagster.build_definitions is build_definitions
    try:
        hygge_dagster.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
