#!/bin/bash
# Speed of every packing mode against the strong pair baseline (bel bench: 12 test documents, 3 training documents,
# 3 interleaved repetitions, medians) into RUN_DIR/bench.json; extra options go to bel bench.
#   BEL_DATA_DIR=... bash eval/recipes/speed_bench.sh DATASET RUN_DIR [bel bench options]
#   BEL_DATA_DIR=... bash eval/recipes/speed_bench.sh ncbi-disease eval/runs/bench-ncbi-test-s4
#   BEL_DATA_DIR=... bash eval/recipes/speed_bench.sh bc5cdr-disease eval/runs/bench-bc5cdr-disease-test --templates compact
#   THREADS=2 BEL_DATA_DIR=... bash eval/recipes/speed_bench.sh ncbi-disease eval/runs/bench-ncbi-test-s5-idle
source "$(dirname "$0")/_lib.sh"
dataset=${1:?DATASET}
dir=${2:?RUN_DIR, e.g. eval/runs/bench-ncbi-test}
shift 2
start_run "$dir" "$0" "$dataset" "$dir" "$@"
"$PYTHON" -m bel bench --dataset "$dataset" --split test --num-candidates 16 --max-documents 12 --train-documents 3 \
  --repeats 3 --threads "$THREADS" "$@" --output "$dir/bench.json" > "$dir/bench.log" 2>&1
