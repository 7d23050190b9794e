#!/bin/bash
# Raw text in, typed links out (issue 12): a linker (the current recipe on the first 120 training documents) and a
# mention detector (all training documents, dev F1 picks the epoch) trained side by side, the detector attached to the
# linker, then `bel eval --end-to-end` on the whole test split with the learned detector and with the dictionary.
#   BEL_DATA_DIR=... bash eval/recipes/end_to_end.sh DATASET RUN_DIR [DETECTOR_EPOCHS]
#   e.g. bash eval/recipes/end_to_end.sh ncbi-disease eval/runs/ncbi-end-to-end
#        bash eval/recipes/end_to_end.sh bc5cdr eval/runs/bc5cdr-end-to-end   (diseases and chemicals, one checkpoint)
# The checkpoint (with detector/) is left in CHECKPOINT_DIR/$(basename RUN_DIR)-linker/best.
source "$(dirname "$0")/_lib.sh"
dataset=${1:?DATASET}
dir=${2:?RUN_DIR}
epochs=${3:-4}
start_run "$dir" "$0" "$dataset" "$dir" "$epochs"
linker=$CHECKPOINT_DIR/$(basename "$dir")-linker
detector=$CHECKPOINT_DIR/$(basename "$dir")-detector
# shellcheck disable=SC2086
"$PYTHON" -m bel train --dataset "$dataset" $RECIPE_TRAIN --max-train-documents 120 --mode sentence \
  --template compact --output-dir "$linker" > "$dir/train.log" 2>&1 &
linker_job=$!
"$PYTHON" -m bel train --stage detector --dataset "$dataset" --detector-epochs "$epochs" --output-dir "$detector" \
  > "$dir/train_detector.log" 2>&1 &
detector_job=$!
wait "$linker_job"
wait "$detector_job"
cp "$linker/train_summary.json" "$dir/train_summary.json"
cp "$detector/detector_summary.json" "$dir/detector_summary.json"
"$PYTHON" -m bel.saving attach-detector "$detector/detector" "$linker/best"  # what --stage both does in one run
for detector_kind in model dictionary; do
  "$PYTHON" -m bel eval "$linker/best" --dataset "$dataset" --split test --end-to-end --detector "$detector_kind" \
    --output "$dir/eval_$detector_kind.json" > "$dir/eval_$detector_kind.log" 2>&1
done
