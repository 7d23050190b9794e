#!/bin/bash
# The recommended recipe on ALL training documents (the `bel train` defaults: sentence packing, compact template),
# evaluated on test as trained and packed in the other modes at inference (eval_as_MODE.json).
#   BEL_DATA_DIR=... bash eval/recipes/full.sh DATASET RUN_DIR [extra bel train options, e.g. --epochs 2]
#   BEL_DATA_DIR=... bash eval/recipes/full.sh ncbi-disease eval/runs/ncbi-full-sentence-compact
source "$(dirname "$0")/_lib.sh"
dataset=${1:?DATASET}
dir=${2:?RUN_DIR, e.g. eval/runs/ncbi-full-sentence-compact}
shift 2
start_run "$dir" "$0" "$dataset" "$dir" "$@"
train_and_eval "$dir" "$dataset" --mode sentence --template compact --checkpoint-every 100 "$@"
ckpt=$CHECKPOINT_DIR/$(basename "$dir")
for mode in mention passage document; do
  "$PYTHON" -m bel eval "$ckpt/best" --dataset "$dataset" --split test --mode "$mode" --template compact \
    --output "$dir/eval_as_$mode.json" > "$dir/eval_as_$mode.log" 2>&1
done
