#!/bin/bash
# session 3: NCBI, one epoch each, span pooling with and without the retrieval score, side by side (one core each);
# run from the repo root. Test evaluations: see eval/RESULTS.md
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
common="--dataset ncbi-disease --mode sentence --template compact --num-candidates 16 --slot-pooling span --learning-rate 5e-5 --epochs 1 --batch-size 4096 --eval-max-documents 60 --checkpoint-every 100"
.venv/bin/python train.py $common --use-retrieval-score --output-dir runs/span_ret > runs/span_ret.log 2>&1 &
.venv/bin/python train.py $common --output-dir runs/span_pure > runs/span_pure.log 2>&1 &
wait
