#!/bin/bash
# session 3: BC5CDR disease and chemical, one epoch each, side by side (one core each), then their test evaluations
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
common="--mode sentence --template compact --num-candidates 16 --slot-pooling span --use-retrieval-score --learning-rate 5e-5 --epochs 1 --batch-size 4096 --eval-max-documents 60 --checkpoint-every 100"
for d in disease chemical; do
  ( .venv/bin/python train.py --dataset bc5cdr-$d $common --output-dir runs/bc5_$d > runs/bc5_$d.log 2>&1 &&
    .venv/bin/python -m bel eval runs/bc5_$d/best --dataset bc5cdr-$d --split test \
        --output eval/eval_bc5cdr-${d}_test_span_ret.json > runs/eval_bc5_$d.log 2>&1 ) &
done
wait
