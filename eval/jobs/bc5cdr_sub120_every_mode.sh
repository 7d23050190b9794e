#!/bin/bash
# session 5: BC5CDR disease and chemical per-mode rows, same recipe as eval/jobs/ncbi_sub120_every_mode.sh
# (first 120 training documents, one epoch, attention dropout 0, compact template), one queue per dataset side by
# side with one thread each: the speed benchmark, then pair, then each packed mode, each evaluated on all of test
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
common="--num-candidates 16 --slot-pooling span --use-retrieval-score --learning-rate 5e-5 --epochs 1 --batch-size 4096 --max-train-documents 120 --eval-max-documents 60 --attention-dropout 0"
run() {  # dataset mode template
  name=bc5_$1_sub120_$2_$3
  .venv/bin/python train.py --dataset bc5cdr-$1 $common --mode $2 --template $3 --output-dir runs/$name > runs/$name.log 2>&1 &&
  .venv/bin/python -m bel eval runs/$name/best --dataset bc5cdr-$1 --split test \
      --output eval/eval_bc5cdr-$1_test_sub120_$2_$3.json > runs/eval_$name.log 2>&1
}
queue() {  # dataset
  .venv/bin/python -m bel bench --dataset bc5cdr-$1 --split test --num-candidates 16 --templates compact \
      --max-documents 12 --train-documents 3 --repeats 3 --threads 1 \
      --output eval/bench_bc5cdr-$1_test.json > runs/bench_bc5_$1.log 2>&1
  run $1 pair paper
  for mode in sentence passage document mention; do run $1 $mode compact; done
}
queue disease &
queue chemical &
wait
