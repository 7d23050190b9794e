#!/bin/bash
# Domain knowledge from the KB (issue 13): one synonym alignment of the encoder on the dataset's KB (KB names only, no
# corpus), rerankers on the same 120 training documents as the current-recipe rows (aliases from the whole training
# split, one epoch, RECIPE_TRAIN), then retriever recall of TF-IDF / dense / hybrid with the aligned encoder:
#   aligned-tfidf      the aligned encoder, TF-IDF candidates
#   aligned-hybrid     the aligned encoder, hybrid candidates (TF-IDF + dense, interpolated, weight 0.3)
#   aligned-hybrid-kb  the same, plus one KB synonym as a context-free pseudo-mention per corpus mention
#   kb-only            no corpus anywhere: KB names only in the retriever, KB_ONLY_MENTIONS pseudo-mentions to train on
#                      (dev = held-out synonyms), the aligned encoder and hybrid candidates
#   BEL_DATA_DIR=... bash eval/recipes/domain_knowledge.sh DATASET RUN_PREFIX [VARIANTS...]
#   e.g. bash eval/recipes/domain_knowledge.sh ncbi-disease eval/runs/ncbi-domain
#        EVAL_DATASETS="bc5cdr-disease bc5cdr-chemical" ALIGN_OPTIONS="--max-steps 400" \
#          bash eval/recipes/domain_knowledge.sh bc5cdr eval/runs/bc5cdr-domain aligned-hybrid
# Settings: KB_ONLY_MENTIONS (5000), ALIGN_OPTIONS (e.g. "--max-steps 400": part of an epoch on MeSH;
# "--corpus-mentions": the training mentions as names too), EVAL_DATASETS (test splits each checkpoint is scored on
# and the retriever recall is measured on; default: DATASET).
# Records: RUN_PREFIX-align (alignment.json, retrieval[_DATASET].json), RUN_PREFIX-VARIANT (train_summary.json,
# eval[_DATASET].json).
source "$(dirname "$0")/_lib.sh"
dataset=${1:?DATASET}
prefix=${2:?RUN_PREFIX}
shift 2
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(aligned-tfidf aligned-hybrid aligned-hybrid-kb kb-only)
KB_ONLY_MENTIONS=${KB_ONLY_MENTIONS:-5000}
ALIGN_OPTIONS=${ALIGN_OPTIONS:-}
read -r -a eval_datasets <<< "${EVAL_DATASETS:-$dataset}"
suffix() { [ "$1" = "$dataset" ] && echo "" || echo "_$1"; }
align_dir=$prefix-align
start_run "$align_dir" "$0" "$dataset" "$prefix" "${variants[@]}"
encoder=$CHECKPOINT_DIR/$(basename "$align_dir")/encoder
if [ ! -f "$align_dir/alignment.json" ]; then
  # shellcheck disable=SC2086
  "$PYTHON" -m bel align --dataset "$dataset" --output-dir "$CHECKPOINT_DIR/$(basename "$align_dir")" \
    $ALIGN_OPTIONS > "$align_dir/align.log" 2>&1
  cp "$CHECKPOINT_DIR/$(basename "$align_dir")/alignment.json" "$align_dir/alignment.json"
fi
ALIGNED="--no-align --encoder $encoder --max-train-documents 120"
for variant in "${variants[@]}"; do
  dir=$prefix-$variant
  start_run "$dir" "$0" "$dataset" "$prefix" "$variant"
  case $variant in
    aligned-tfidf) options="$ALIGNED --retrieval tfidf" ;;
    aligned-hybrid) options="$ALIGNED --retrieval hybrid" ;;
    aligned-hybrid-kb) options="$ALIGNED --retrieval hybrid --kb-examples 1" ;;
    kb-only) options="--no-align --encoder $encoder --retrieval hybrid --kb-only --kb-examples-count $KB_ONLY_MENTIONS" ;;
    *) echo "unknown variant $variant" >&2; exit 2 ;;
  esac
  ckpt=$CHECKPOINT_DIR/$(basename "$dir")
  # shellcheck disable=SC2086
  "$PYTHON" -m bel train --dataset "$dataset" $RECIPE_TRAIN $options --output-dir "$ckpt" > "$dir/train.log" 2>&1
  cp "$ckpt/train_summary.json" "$dir/train_summary.json"
  for name in "${eval_datasets[@]}"; do
    "$PYTHON" -m bel eval "$ckpt/best" --dataset "$name" --split test --output "$dir/eval$(suffix "$name").json" \
      > "$dir/eval$(suffix "$name").log" 2>&1
  done
done
for name in "${eval_datasets[@]}"; do
  output=$align_dir/retrieval$(suffix "$name").json
  [ -f "$output" ] || "$PYTHON" eval/retrieval.py --dataset "$name" --split test --dense-encoder "$encoder" \
    --fusion-weight 0.3 0.5 --threads "$THREADS" --output "$output" > "${output%.json}.log" 2>&1
done
