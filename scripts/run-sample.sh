#!/usr/bin/env bash
# Set up hygge in ./.venv and run the bundled sample project (Parquet to Parquet, no database needed).
# Usage: bash scripts/run-sample.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv "."
.venv/bin/hygge start -p samples/parquet_to_parquet.yaml
echo "The sample landed in lake/sample/ (one folder per entity)."
