#!/bin/bash
# session 4: (a) NCBI, span pooling + retrieval score, two full epochs (the best recipe of session 3 with one more
# epoch); (b) pair on the first 120 training documents with the recipe of eval/jobs/ncbi_pair_vs_sentence.sh, whose
# sentence/compact half finished in session 3 (eval/eval_ncbi_test_sub120_sentence_compact_span.json) and whose pair
# half was lost when that session's machine stopped. Side by side, one thread each; run from the repo root.
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
( .venv/bin/python train.py --dataset ncbi-disease --mode sentence --template compact --num-candidates 16 \
    --slot-pooling span --use-retrieval-score --learning-rate 5e-5 --epochs 2 --batch-size 4096 \
    --eval-max-documents 60 --checkpoint-every 100 --output-dir runs/span_ret_2ep > runs/span_ret_2ep.log 2>&1 &&
  .venv/bin/python -m bel eval runs/span_ret_2ep/best --dataset ncbi-disease --split test \
    --output eval/eval_ncbi_test_span_ret_2ep.json > runs/eval_span_ret_2ep.log 2>&1 ) &
( .venv/bin/python train.py --dataset ncbi-disease --num-candidates 16 --slot-pooling span --use-retrieval-score \
    --learning-rate 5e-5 --epochs 1 --batch-size 4096 --max-train-documents 120 --eval-max-documents 60 \
    --mode pair --template paper --output-dir runs/sub120_pair > runs/sub120_pair.log 2>&1 &&
  .venv/bin/python -m bel eval runs/sub120_pair/best --dataset ncbi-disease --split test \
    --output eval/eval_ncbi_test_sub120_pair.json > runs/eval_sub120_pair.log 2>&1 ) &
wait
