#!/bin/bash
# session 3: one more NCBI epoch on top of runs/span_ret/best (fresh optimizer, lr 3e-5, new shuffle), then test eval
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
.venv/bin/python train.py --dataset ncbi-disease --init-from runs/span_ret/best --mode sentence --template compact \
    --num-candidates 16 --use-retrieval-score --learning-rate 3e-5 --seed 43 --epochs 1 --batch-size 4096 \
    --eval-max-documents 60 --checkpoint-every 100 --output-dir runs/span_ret_e2 > runs/span_ret_e2.log 2>&1 &&
.venv/bin/python -m bel eval runs/span_ret_e2/best --dataset ncbi-disease --split test \
    --output eval/eval_ncbi_test_span_ret_e2.json > runs/eval_span_ret_e2.log 2>&1
