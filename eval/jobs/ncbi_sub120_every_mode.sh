#!/bin/bash
# session 4: every other packed mode trained on the same 120 NCBI documents as runs/sub120_{pair,sc}_noattndrop
# (same recipe, attention dropout 0), two queues side by side with one thread each, then each evaluated on test
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
common="--dataset ncbi-disease --num-candidates 16 --slot-pooling span --use-retrieval-score --learning-rate 5e-5 --epochs 1 --batch-size 4096 --max-train-documents 120 --eval-max-documents 60 --attention-dropout 0"
run() {  # mode template
  .venv/bin/python train.py $common --mode $1 --template $2 --output-dir runs/sub120_$1_$2 > runs/sub120_$1_$2.log 2>&1 &&
  .venv/bin/python -m bel eval runs/sub120_$1_$2/best --dataset ncbi-disease --split test \
      --output eval/eval_ncbi_test_sub120_$1_$2.json > runs/eval_sub120_$1_$2.log 2>&1
}
( run mention compact; run passage compact; run document compact; run mention paper ) &
( run sentence paper; run passage paper; run document paper ) &
wait
