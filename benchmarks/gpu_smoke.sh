#!/usr/bin/env bash
# Smoke run of every trainer and eval --ckpt (benchmarks/gpu_smoke.py; --device cuda on a GPU machine).
set -euo pipefail
exec python "$(dirname "$0")/gpu_smoke.py" "$@"
