#!/bin/bash
# session 3: pair vs sentence/compact on the same data and budget (first 120 NCBI training documents, one epoch,
# span pooling + retrieval score), side by side with one thread each, then both evaluated on all of NCBI test
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
common="--dataset ncbi-disease --num-candidates 16 --slot-pooling span --use-retrieval-score --learning-rate 5e-5 --epochs 1 --batch-size 4096 --max-train-documents 120 --eval-max-documents 60"
run() {  # name mode template
  .venv/bin/python train.py $common --mode $2 --template $3 --output-dir runs/sub120_$1 > runs/sub120_$1.log 2>&1 &&
  .venv/bin/python -m bel eval runs/sub120_$1/best --dataset ncbi-disease --split test \
      --output eval/eval_ncbi_test_sub120_$1.json > runs/eval_sub120_$1.log 2>&1
}
run pair pair paper &
run sentence_compact_span sentence compact &
wait
