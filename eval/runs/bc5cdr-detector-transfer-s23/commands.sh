# Session 23: the round-5 BC5CDR detector (both types, train + dev, 4 epochs, dictionary features), started from an
# NCBI detector. For time, the source is session 18's NCBI probe detector (`bel train --stage detector --dataset
# ncbi-disease --detector-epochs 6 --detector-dictionary --output-dir runs/det/ncbi-probe6`: training split only, dev
# picked epoch 3) instead of the recipe's train + dev source (eval/recipes/detector_transfer.sh ncbi-disease bc5cdr).
# manifest.json records the call of eval/recipes/detector_transfer.sh that was stopped during its source step (18:34-18:43).
export BEL_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python -m bel train --stage detector --dataset bc5cdr --detector-epochs 4 --detector-dictionary \
  --detector-train-on-dev --detector-init-from runs/det/ncbi-probe6/detector --output-dir runs/bc5cdr-detector-transfer-s23
.venv/bin/python eval/detector_decoding.py runs/bc5cdr-detector-transfer-s23/detector --dataset bc5cdr --split test \
  --output eval/runs/bc5cdr-detector-transfer-s23/decoding_test.json
