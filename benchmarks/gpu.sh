#!/usr/bin/env bash
# The GPU benchmark in one call (see benchmarks/gpu.py for the sections); writes one JSON.
#   benchmarks/gpu.sh --out gpu.json                  # on a GPU machine, about 10 minutes
#   benchmarks/gpu.sh --dry-run --out /tmp/gpu.json   # tiny shapes on the CPU, seconds (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" benchmarks/gpu.py "$@"
