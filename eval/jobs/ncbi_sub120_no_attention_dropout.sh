#!/bin/bash
# session 4: the sub-120 pair vs sentence/compact comparison again with the new default --attention-dropout 0
# (same recipe and conditions as runs/sub120_pair and runs/sub120_sc: one thread, beside the one-thread 2-epoch job)
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
common="--dataset ncbi-disease --num-candidates 16 --slot-pooling span --use-retrieval-score --learning-rate 5e-5 --epochs 1 --batch-size 4096 --max-train-documents 120 --eval-max-documents 60 --attention-dropout 0"
run() {  # name mode template
  .venv/bin/python train.py $common --mode $2 --template $3 --output-dir runs/sub120_$1 > runs/sub120_$1.log 2>&1 &&
  .venv/bin/python -m bel eval runs/sub120_$1/best --dataset ncbi-disease --split test \
      --output eval/eval_ncbi_test_sub120_$1.json > runs/eval_sub120_$1.log 2>&1
}
run sc_noattndrop sentence compact
run pair_noattndrop pair paper
