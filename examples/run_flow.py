"""Run the bundled sample from Python with hygge's library API (no Dagster, no CLI).

python examples/run_flow.py
"""

from __future__ import annotations

import logging
from pathlib import Path

import hygge_core


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    project = hygge_core.load_project(Path(__file__).resolve().parent.parent / "samples" / "parquet_to_parquet.yaml")
    result = hygge_core.run_project(project)
    for entity in result.entities:
        print(f"{entity.key:<32} {entity.status:<8} {entity.rows:>8,} rows  {entity.rows_per_second:>12,.0f} rows/s")
    if not result.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
