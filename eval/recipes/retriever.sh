#!/bin/bash
# The retriever alone (character n-gram TF-IDF over the KB names + training aliases, abbreviations expanded).
#   BEL_DATA_DIR=... bash eval/recipes/retriever.sh eval DATASET RUN_DIR
#       bel eval --retriever-only: Acc@1/Acc@5/MRR at C = 16, the "retriever only" rows (RUN_DIR/eval.json)
#   BEL_DATA_DIR=... bash eval/recipes/retriever.sh recall DATASET RUN_DIR [eval/retrieval.py options]
#       eval/retrieval.py: recall@1/5/16/64, mentions/s, peak RSS (RUN_DIR/retrieval.json); options e.g. --kb medic,
#       --no-aliases, --no-abbreviations, --max-df 0.01
#   e.g. bash eval/recipes/retriever.sh eval ncbi-disease eval/runs/ncbi-retriever
#        bash eval/recipes/retriever.sh recall bc5cdr-disease eval/runs/retrieval-bc5cdr-disease-test-medic --kb medic
source "$(dirname "$0")/_lib.sh"
what=${1:?eval or recall}
dataset=${2:?DATASET}
dir=${3:?RUN_DIR}
shift 3
start_run "$dir" "$0" "$what" "$dataset" "$dir" "$@"
case $what in
  eval) "$PYTHON" -m bel eval --retriever-only --dataset "$dataset" --split test --output "$dir/eval.json" \
          > "$dir/eval.log" 2>&1 ;;
  recall) "$PYTHON" eval/retrieval.py --dataset "$dataset" --split test --top-k 64 "$@" --output "$dir/retrieval.json" \
          > "$dir/retrieval.log" 2>&1 ;;
  *) echo "first argument: eval or recall" >&2; exit 2 ;;
esac
