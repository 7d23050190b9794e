#!/bin/bash
# session 4: the runs/full_sc_noattndrop weights (trained in sentence/compact) packed in every other mode at inference
export BEL_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1
for mode in mention passage document; do
  .venv/bin/python -m bel eval runs/full_sc_noattndrop/best --dataset ncbi-disease --split test --mode $mode \
      --template compact --output eval/eval_ncbi_test_full_sc_noattndrop_as_${mode}.json > runs/eval_as_$mode.log 2>&1
done
