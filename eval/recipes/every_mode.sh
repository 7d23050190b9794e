#!/bin/bash
# Every packing mode trained on the same first 120 training documents (one epoch, the shared recipe of _lib.sh),
# each evaluated on the whole test split: the per-mode tables of eval/RESULTS.md.
#   BEL_DATA_DIR=... bash eval/recipes/every_mode.sh DATASET RUN_PREFIX [MODE/TEMPLATE ...]
# One run folder per mode: RUN_PREFIX-MODE-TEMPLATE (e.g. eval/runs/ncbi-sub120-sentence-compact). Default modes:
# pair/paper and the four packed modes with both templates for ncbi-disease, with the compact template for BC5CDR.
# The recorded runs used THREADS=1 and two such queues side by side (split the mode list over two calls).
#   BEL_DATA_DIR=... bash eval/recipes/every_mode.sh ncbi-disease eval/runs/ncbi-sub120
#   BEL_DATA_DIR=... bash eval/recipes/every_mode.sh bc5cdr-disease eval/runs/bc5cdr-disease-sub120
source "$(dirname "$0")/_lib.sh"
dataset=${1:?DATASET}
prefix=${2:?RUN_PREFIX, e.g. eval/runs/ncbi-sub120}
shift 2
modes=("$@")
if [ ${#modes[@]} -eq 0 ]; then
  modes=(pair/paper)
  for mode in sentence passage document mention; do
    modes+=("$mode/compact")
    [ "$dataset" = ncbi-disease ] && modes+=("$mode/paper")
  done
fi
for mt in "${modes[@]}"; do
  mode=${mt%/*} template=${mt#*/}
  dir=$prefix-$mode-$template
  start_run "$dir" "$0" "$dataset" "$prefix" "$mt"
  train_and_eval "$dir" "$dataset" --max-train-documents 120 --mode "$mode" --template "$template"
done
