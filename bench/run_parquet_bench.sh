#!/usr/bin/env bash
# Run the Parquet → Parquet benchmark against a frozen copy of the committed engine.
#
# Why a copy: benchmark children import hygge_core afresh, and a working tree that
# changes during a 10-minute run would mix versions. `git archive` freezes HEAD's
# hygge_core in the scratch folder, and PYTHONPATH puts it ahead of the editable install.
#
#   bench/run_parquet_bench.sh                      # all cases, 3 repetitions
#   bench/run_parquet_bench.sh --cases mixed:1M mixed:10M --reps 5
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${HYGGE_BENCH_SCRATCH:-${TMPDIR:-/tmp}/hygge-bench}"
python="${PYTHON:-python}"

mkdir -p "$scratch"
frozen="$(mktemp -d "$scratch/engine-XXXXXX")"
trap 'rm -rf "$frozen"' EXIT
git -C "$repo" archive HEAD hygge_core | tar -x -C "$frozen"
echo "# engine: $(git -C "$repo" rev-parse --short HEAD) (frozen in $frozen)"

PYTHONPATH="$frozen${PYTHONPATH:+:$PYTHONPATH}" "$python" "$repo/bench/parquet_bench.py" --scratch "$scratch" "$@"
