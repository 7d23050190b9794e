#!/bin/bash
# session 4: sentence/compact on the first 120 NCBI training documents, the same recipe as runs/sub120_pair
# (eval/jobs/ncbi_span_e2_and_pair_sub120.sh), re-run under the same conditions as that pair run (one thread, beside
# the one-thread 2-epoch job) so the two training epochs' wall times compare; session 3's run and its log were lost.
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
.venv/bin/python train.py --dataset ncbi-disease --num-candidates 16 --slot-pooling span --use-retrieval-score \
    --learning-rate 5e-5 --epochs 1 --batch-size 4096 --max-train-documents 120 --eval-max-documents 60 \
    --mode sentence --template compact --output-dir runs/sub120_sc > runs/sub120_sc.log 2>&1 &&
.venv/bin/python -m bel eval runs/sub120_sc/best --dataset ncbi-disease --split test \
    --output eval/eval_ncbi_test_sub120_sentence_compact_span_rerun.json > runs/eval_sub120_sc.log 2>&1
