#!/usr/bin/env bash
# Install everything the tests need (system packages when missing, then Python packages) and run them.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
source scripts/venv.sh
ensure_venv "test"
if [ "$#" -eq 0 ]; then
    .venv/bin/python -m ruff check .            # lint the whole tree on full runs (rules in pyproject.toml)
    .venv/bin/python -m ruff format --check .   # and its formatting (run `ruff format .` to fix)
    # Full runs use one pytest worker per core (at most 4): most of the suite waits on subprocesses and servers,
    # so two workers on two cores take ~40% less time. Every test has its own folders, ports and servers.
    set -- --numprocesses auto --maxprocesses 4
fi
.venv/bin/python -m pytest "$@"
