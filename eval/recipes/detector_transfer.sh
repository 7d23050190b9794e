#!/usr/bin/env bash
# A detector started from another corpus's detector (issue 12, round 5), both trained on train + dev:
#   bash eval/recipes/detector_transfer.sh SOURCE_DATASET TARGET_DATASET RUN_DIR [SOURCE_EPOCHS] [TARGET_EPOCHS]
# e.g. `bash eval/recipes/detector_transfer.sh ncbi-disease bc5cdr eval/runs/bc5cdr-detector-from-ncbi-traindev4 6 4`
# with THREADS=2 (BC5CDR test strict mentions: Disease 83.6, Chemical 89.4; about 45 min) or
# `... bc5cdr ncbi-disease eval/runs/NAME 3 8` (the round-5 NCBI detector). The source learns from its own train + dev
# split (the target's test split is never read before the end); the target starts from it with
# `--detector-init-from` and is scored once on its test split by eval/detector_decoding.py. Attach the target
# detector to a linker with `python -m bel.saving attach-detector DETECTOR_DIR LINKER_DIR` for end-to-end figures.
source "$(dirname "$0")/_lib.sh"
source_dataset=${1:?SOURCE_DATASET}
target_dataset=${2:?TARGET_DATASET}
dir=${3:?RUN_DIR}
source_epochs=${4:-6}
target_epochs=${5:-4}
start_run "$dir" "$0" "$@"
source_ckpt=$CHECKPOINT_DIR/$(basename "$dir")-source
target_ckpt=$CHECKPOINT_DIR/$(basename "$dir")
"$PYTHON" -m bel train --stage detector --dataset "$source_dataset" --detector-epochs "$source_epochs" \
  --detector-dictionary --detector-train-on-dev --output-dir "$source_ckpt" > "$dir/train_source.log" 2>&1
cp "$source_ckpt/detector_summary.json" "$dir/source_detector_summary.json"
"$PYTHON" -m bel train --stage detector --dataset "$target_dataset" --detector-epochs "$target_epochs" \
  --detector-dictionary --detector-train-on-dev --detector-init-from "$source_ckpt/detector" \
  --output-dir "$target_ckpt" > "$dir/train.log" 2>&1
cp "$target_ckpt/detector_summary.json" "$dir/detector_summary.json"
"$PYTHON" eval/detector_decoding.py "$target_ckpt/detector" --dataset "$target_dataset" --split test \
  --threads "$THREADS" --output "$dir/decoding_test.json" > "$dir/decoding_test.log" 2>&1
