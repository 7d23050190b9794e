# Shared by the recipes in this folder (sourced, not run). Settings come from the environment:
#   BEL_DATA_DIR    corpora directory (required; see the README's data section)
#   PYTHON          interpreter with bel installed (default .venv/bin/python)
#   THREADS         torch/OpenMP threads per job (default 1: the recorded runs used one thread each)
#   CHECKPOINT_DIR  where trained models go, outside the records (default runs/, git-ignored)
# Records go to the run folder named on the command line (eval/runs/NAME): JSON results, the training summary, a
# manifest.json of the recipe call (bel.manifest) and the logs of the commands.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-1}
CHECKPOINT_DIR=${CHECKPOINT_DIR:-runs}
: "${BEL_DATA_DIR:?set BEL_DATA_DIR to the corpora directory}"
export BEL_DATA_DIR OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}

# The options every recorded reranker run shares: C = 16, span slot pooling, the retriever's score as a learned
# input, lr 5e-5, 4,096 padded tokens per step, attention dropout 0, dev = first 60 documents (the `bel train`
# defaults, spelled out so the records do not depend on them). The records before issue 13 had no synonym alignment and
# TF-IDF candidates: `--no-align --retrieval tfidf` keeps them reproducible (later options on a command line win).
RECIPE_TRAIN="--num-candidates 16 --slot-pooling span --use-retrieval-score --learning-rate 5e-5 --epochs 1
  --batch-size 4096 --eval-max-documents 60 --attention-dropout 0 --no-align --retrieval tfidf"

start_run() {  # RUN_DIR RECIPE ARGS...: create the run folder and its manifest
  local dir=$1
  shift
  mkdir -p "$dir"
  "$PYTHON" -m bel.manifest "$dir/manifest.json" -- bash "$@"
}

train_and_eval() {  # RUN_DIR DATASET TRAIN_OPTIONS...: train into CHECKPOINT_DIR, copy the summary, evaluate on test
  local dir=$1 dataset=$2
  shift 2
  local ckpt
  ckpt=$CHECKPOINT_DIR/$(basename "$dir")
  # shellcheck disable=SC2086
  "$PYTHON" -m bel train --dataset "$dataset" $RECIPE_TRAIN "$@" --output-dir "$ckpt" > "$dir/train.log" 2>&1
  cp "$ckpt/train_summary.json" "$dir/train_summary.json"
  "$PYTHON" -m bel eval "$ckpt/best" --dataset "$dataset" --split test --output "$dir/eval.json" > "$dir/eval.log" 2>&1
}
