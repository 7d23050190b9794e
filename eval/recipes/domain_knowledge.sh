#!/bin/bash
# Domain knowledge from the KB (issue 13): one synonym alignment of the encoder on the dataset's KB (KB names only, no
# corpus), retriever recall of TF-IDF / dense / hybrid with it, then rerankers on the same 120 training documents as
# the current-recipe rows (aliases from the whole training split, one epoch, RECIPE_TRAIN):
#   aligned-tfidf      the aligned encoder, TF-IDF candidates
#   aligned-hybrid     the aligned encoder, hybrid candidates (TF-IDF + dense, interpolated, weight 0.3)
#   aligned-hybrid-kb  the same, plus one KB synonym as a context-free pseudo-mention per corpus mention
#   kb-only            no corpus anywhere: KB names only in the retriever, KB_ONLY_MENTIONS pseudo-mentions to train on
#                      (dev = held-out synonyms), the aligned encoder and hybrid candidates
#   BEL_DATA_DIR=... [KB_ONLY_MENTIONS=5000] [ALIGN_OPTIONS=...] bash eval/recipes/domain_knowledge.sh DATASET RUN_PREFIX [VARIANTS...]
#   e.g. bash eval/recipes/domain_knowledge.sh ncbi-disease eval/runs/ncbi-domain
# Records: RUN_PREFIX-align (alignment.json, retrieval.json) and RUN_PREFIX-VARIANT (train_summary.json, eval.json).
source "$(dirname "$0")/_lib.sh"
dataset=${1:?DATASET}
prefix=${2:?RUN_PREFIX}
shift 2
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(aligned-tfidf aligned-hybrid aligned-hybrid-kb kb-only)
KB_ONLY_MENTIONS=${KB_ONLY_MENTIONS:-5000}
ALIGN_OPTIONS=${ALIGN_OPTIONS:-}  # e.g. "--max-steps 400": part of an epoch on a large KB (MeSH)
align_dir=$prefix-align
start_run "$align_dir" "$0" "$dataset" "$prefix" "${variants[@]}"
encoder=$CHECKPOINT_DIR/$(basename "$align_dir")/encoder
if [ ! -f "$align_dir/alignment.json" ]; then
  # shellcheck disable=SC2086
  "$PYTHON" -m bel align --dataset "$dataset" --output-dir "$CHECKPOINT_DIR/$(basename "$align_dir")" \
    $ALIGN_OPTIONS > "$align_dir/align.log" 2>&1
  cp "$CHECKPOINT_DIR/$(basename "$align_dir")/alignment.json" "$align_dir/alignment.json"
fi
if [ ! -f "$align_dir/retrieval.json" ]; then
  "$PYTHON" eval/retrieval.py --dataset "$dataset" --split test --dense-encoder "$encoder" --fusion-weight 0.3 0.5 \
    --threads "$THREADS" --output "$align_dir/retrieval.json" > "$align_dir/retrieval.log" 2>&1
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
  # shellcheck disable=SC2086
  train_and_eval "$dir" "$dataset" $options
done
