# Session 23: a dev probe of `--detector-context document` (title and abstract read as one sequence, [SEP] between).
# Same command as the seed-42 member of eval/runs/ncbi-detector-soup/ (runs/det/ncbi-tr-s42: training split only,
# started from session 20's BC5CDR detector, 8 epochs, dev strict F1 per epoch), only the context changed.
export BEL_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python -m bel train --stage detector --dataset ncbi-disease --detector-epochs 8 --detector-dictionary \
  --detector-init-from runs/ncbi-detector-transfer-s20-source/detector --seed 42 --detector-context document \
  --output-dir runs/det/ncbi-tr-s42-document
cp runs/det/ncbi-tr-s42-document/detector_summary.json eval/runs/ncbi-detector-document-context/
cp runs/det/ncbi-tr-s42/detector_summary.json eval/runs/ncbi-detector-document-context/passage_detector_summary.json
