#!/usr/bin/env bash
# Rerankers trained with several seeds and their model soup (`bel soup`: the mean of their weights), on NCBI Disease:
#   bash eval/recipes/reranker_soups.sh RUN_DIR ENCODER SEED SEED [SEED ...]
# e.g. `bash eval/recipes/reranker_soups.sh eval/runs/ncbi-soup runs/ncbi-domain-s19-align/encoder 42 43`, with
# EXTRA="--candidate-namespace" for the namespace rerankers. Each seed trains the issue-13 recipe's reranker (the first
# 120 training documents, the MEDIC-aligned ENCODER, hybrid candidates); every member and the soup are scored on the dev
# and test splits (RUN_DIR/{seed*,soup}_{dev,test}.json).
source "$(dirname "$0")/_lib.sh"
dir=${1:?RUN_DIR}
encoder=${2:?ENCODER}
shift 2
(($# >= 2)) || { echo "give two seeds or more" >&2; exit 2; }
start_run "$dir" "$0" "$dir" "$encoder" "$@"
name=$(basename "$dir")
members=()
score() {  # CHECKPOINT LABEL
  for split in dev test; do
    "$PYTHON" -m bel eval "$1" --dataset ncbi-disease --split "$split" --threads "$THREADS" \
      --output "$dir/$2_$split.json" > "$dir/$2_$split.log" 2>&1
  done
}
for seed in "$@"; do
  ckpt=$CHECKPOINT_DIR/$name-seed$seed
  # shellcheck disable=SC2086
  "$PYTHON" -m bel train --dataset ncbi-disease $RECIPE_TRAIN --encoder "$encoder" --max-train-documents 120 \
    --retrieval hybrid ${EXTRA:-} --seed "$seed" --output-dir "$ckpt" > "$dir/train_seed$seed.log" 2>&1
  cp "$ckpt/train_summary.json" "$dir/train_summary_seed$seed.json"
  score "$ckpt/best" "seed$seed"
  members+=("$ckpt/best")
done
rm -rf "$CHECKPOINT_DIR/$name-soup"
"$PYTHON" -m bel soup "${members[@]}" --output-dir "$CHECKPOINT_DIR/$name-soup/best" > "$dir/soup.log" 2>&1
score "$CHECKPOINT_DIR/$name-soup/best" soup
