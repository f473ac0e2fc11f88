"""A Dagster code location that runs a hygge project's steps on Celery workers (``dagster-celery``).

The definitions are hygge's own (``hygge_dagster.project_definitions``: one asset per entity, the
``hygge_entities`` job, schedules, sensors); only the executor changes. Every step, an entity's or a
flow's shared step, becomes one Celery task on whichever worker takes it. The workers import this file
too (Dagster rebuilds the job there from its path), so they need the same environment:

    export HYGGE_PROJECT=/srv/lake/hygge.yml                 # the project, seen at the same path everywhere
    export HYGGE_CELERY_BROKER=redis://broker:6379/0         # the broker and the result backend
    export HYGGE_CELERY_BACKEND=redis://broker:6379/1
    dagster-celery worker start -A dagster_celery.app -y examples/celery/celery.yaml -n worker1   # per worker
    dagster job execute -f examples/celery/celery_location.py -j hygge_entities                  # one run

or serve it as a code location (a ``python_file:`` entry in the deployment's workspace.yaml) and launch from the UI.

Every process needs the same ``$DAGSTER_HOME`` instance (on several machines, a PostgreSQL-backed one) and the
same store (a filesystem or object store they all see). tests/dagster/test_celery.py runs exactly this.
"""

from __future__ import annotations

import os

from dagster_celery import celery_executor

from hygge_core import load_project
from hygge_dagster import project_definitions

# Read from the environment when a run starts (Dagster's {"env": ...} config), in the process that submits steps.
celery = celery_executor.configured(
    {"broker": {"env": "HYGGE_CELERY_BROKER"}, "backend": {"env": "HYGGE_CELERY_BACKEND"}}, name="hygge_celery"
)

defs = project_definitions(load_project(os.environ["HYGGE_PROJECT"]), executor=celery)
