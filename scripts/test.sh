#!/usr/bin/env bash
# Install everything the tests need (system packages when missing, then Python packages) and run them.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
source scripts/venv.sh
ensure_venv "test"
.venv/bin/python -m pytest "$@"
