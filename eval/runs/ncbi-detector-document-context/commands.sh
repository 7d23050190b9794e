# Session 23: a dev probe of `--detector-context document` (title and abstract read as one sequence, [SEP] between).
# Same command as the seed-42 member of eval/runs/ncbi-detector-soup/ (runs/det/ncbi-tr-s42: training split only,
# started from session 20's BC5CDR detector, 8 epochs, dev strict F1 per epoch), only the context changed.
export BEL_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python -m bel train --stage detector --dataset ncbi-disease --detector-epochs 8 --detector-dictionary \
  --detector-init-from runs/ncbi-detector-transfer-s20-source/detector --seed 42 --detector-context document \
  --output-dir runs/det/ncbi-tr-s42-document
cp runs/det/ncbi-tr-s42-document/detector_summary.json eval/runs/ncbi-detector-document-context/
cp runs/det/ncbi-tr-s42/detector_summary.json eval/runs/ncbi-detector-document-context/passage_detector_summary.json
# Test, the round-5 way (train + dev, 8 epochs, the last kept; the passage-context counterpart is session 20's
# runs/ncbi-detector-transfer-s20, from the same source and seed), attached to the issue-13 linker:
.venv/bin/python -m bel train --stage detector --dataset ncbi-disease --detector-epochs 8 --detector-dictionary \
  --detector-train-on-dev --detector-init-from runs/ncbi-detector-transfer-s20-source/detector --seed 42 \
  --detector-context document --output-dir runs/det/ncbi-trdev-s42-document
cp runs/det/ncbi-trdev-s42-document/detector_summary.json eval/runs/ncbi-detector-document-context/detector_summary_trdev.json
rm -rf runs/e2e-document; cp -r runs/ncbi-domain-s19-aligned-hybrid/best runs/e2e-document
.venv/bin/python -m bel.saving attach-detector runs/det/ncbi-trdev-s42-document/detector runs/e2e-document
.venv/bin/python -m bel eval runs/e2e-document --dataset ncbi-disease --split test --end-to-end --detector model \
  --threads 1 --no-progress --output eval/runs/ncbi-detector-document-context/end_to_end_test.json
# Dev, title vs the rest (best epochs of both detectors):
for d in ncbi-tr-s42 ncbi-tr-s42-document; do
  .venv/bin/python eval/detector_passages.py runs/det/$d/detector --dataset ncbi-disease --split dev \
    --output eval/runs/ncbi-detector-document-context/passages_dev_$d.json
done
