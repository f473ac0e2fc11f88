"""The ``hygge`` command line: ``init``, ``start``, ``debug`` and ``dev``."""

from hygge_cli.main import main

__all__ = ["main"]
