#!/bin/bash
# session 4: NCBI, all 593 training documents, sentence/compact, span pooling + retrieval score, attention dropout 0
# (the new default), one epoch (two overfitted: runs/span_ret_2ep), one thread (beside the one-thread benchmark), then the test evaluation
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
.venv/bin/python train.py --dataset ncbi-disease --mode sentence --template compact --num-candidates 16 \
    --slot-pooling span --use-retrieval-score --attention-dropout 0 --learning-rate 5e-5 --epochs 1 --batch-size 4096 \
    --eval-max-documents 60 --checkpoint-every 100 --output-dir runs/full_sc_noattndrop > runs/full_sc_noattndrop.log 2>&1 &&
.venv/bin/python -m bel eval runs/full_sc_noattndrop/best --dataset ncbi-disease --split test \
    --output eval/eval_ncbi_test_full_sc_noattndrop.json > runs/eval_full_sc_noattndrop.log 2>&1
