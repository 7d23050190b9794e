#!/bin/bash
# Raw text in, typed links out (issue 12): a mention detector (all training documents, dev strict F1 picks the epoch)
# attached to a linker, then `bel eval --end-to-end` on the whole test split with the learned detector and with the
# dictionary.
#   BEL_DATA_DIR=... bash eval/recipes/end_to_end.sh DATASET RUN_DIR [DETECTOR_EPOCHS] [DETECTOR_OPTIONS...]
# Settings:
#   LINKER            a trained linker's directory (OUTPUT/best) to attach the detector to (a copy is made); default:
#                     train one with the current recipe on the first 120 training documents (the first records)
#   DETECTOR_ENCODER  the detector's starting encoder (default: the bundled all-MiniLM-L6-v2)
#   DETECTORS         which detectors `bel eval --end-to-end` runs with (default: "model dictionary")
#   DETECTOR          the output directory of a finished `bel train --stage detector` run with the same options, used
#                     instead of training the detector again
# e.g. the first records:  bash eval/recipes/end_to_end.sh ncbi-disease eval/runs/ncbi-end-to-end 4
#      the current ones:    bash eval/recipes/domain_knowledge.sh ncbi-disease eval/runs/ncbi-domain aligned-hybrid
#                           LINKER=runs/ncbi-domain-aligned-hybrid/best DETECTOR_ENCODER=runs/ncbi-domain-align/encoder \
#                             bash eval/recipes/end_to_end.sh ncbi-disease eval/runs/ncbi-end-to-end-r2 8
#      (`bc5cdr`: diseases and chemicals together, one checkpoint, MeSH)
# The checkpoint (with detector/) is left in CHECKPOINT_DIR/$(basename RUN_DIR)-linker/best.
source "$(dirname "$0")/_lib.sh"
dataset=${1:?DATASET}
dir=${2:?RUN_DIR}
epochs=${3:-4}
shift $(($# < 3 ? $# : 3))
start_run "$dir" "$0" "$dataset" "$dir" "$epochs" "$@"
# the settings from the environment, beside the manifest (which holds the command line)
printf 'LINKER=%s\nDETECTOR=%s\nDETECTOR_ENCODER=%s\nDETECTORS=%s\n' "${LINKER:-}" "${DETECTOR:-}" \
  "${DETECTOR_ENCODER:-}" "${DETECTORS:-model dictionary}" > "$dir/settings.env"
linker=$CHECKPOINT_DIR/$(basename "$dir")-linker
detector=$CHECKPOINT_DIR/$(basename "$dir")-detector
detector_options=("$@")
[ -z "${DETECTOR_ENCODER:-}" ] || detector_options+=(--encoder "$DETECTOR_ENCODER")
if [ -n "${LINKER:-}" ]; then
  rm -rf "$linker"
  mkdir -p "$linker"
  cp -r "$LINKER" "$linker/best"
  [ ! -f "$(dirname "$LINKER")/train_summary.json" ] || cp "$(dirname "$LINKER")/train_summary.json" "$linker/"
  linker_job=
else
  # shellcheck disable=SC2086
  "$PYTHON" -m bel train --dataset "$dataset" $RECIPE_TRAIN --max-train-documents 120 --mode sentence \
    --template compact --output-dir "$linker" > "$dir/train.log" 2>&1 &
  linker_job=$!
fi
if [ -n "${DETECTOR:-}" ]; then
  detector=$DETECTOR
else
  "$PYTHON" -m bel train --stage detector --dataset "$dataset" --detector-epochs "$epochs" \
    "${detector_options[@]}" --output-dir "$detector" > "$dir/train_detector.log" 2>&1 &
  wait $!
fi
[ -z "$linker_job" ] || wait "$linker_job"
[ ! -f "$linker/train_summary.json" ] || cp "$linker/train_summary.json" "$dir/train_summary.json"
cp "$detector/detector_summary.json" "$dir/detector_summary.json"
"$PYTHON" -m bel.saving attach-detector "$detector/detector" "$linker/best"  # what --stage both does in one run
for detector_kind in ${DETECTORS:-model dictionary}; do
  "$PYTHON" -m bel eval "$linker/best" --dataset "$dataset" --split test --end-to-end --detector "$detector_kind" \
    --output "$dir/eval_$detector_kind.json" > "$dir/eval_$detector_kind.log" 2>&1
done
