"""Entry-point module: ``dagster asset materialize -m hygge_dagster.definitions --select ...``.

Loads the project named by ``$HYGGE_PROJECT`` (default: the bundled sample).
Importing this module loads that project; that is its whole purpose, which is why
``hygge_dagster`` itself never imports it.
"""

from hygge_dagster.code_location import build_definitions

defs = build_definitions()
