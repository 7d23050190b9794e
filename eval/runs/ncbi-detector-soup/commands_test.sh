set -e
export BEL_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cd /work/main
out=eval/runs/ncbi-detector-soup
mkdir -p $out
while [ ! -f runs/det/ncbi-trdev-s43/detector_summary.json ]; do sleep 30; done
cp runs/det/ncbi-trdev-s43/detector_summary.json $out/detector_summary_trdev_s43.json
rm -rf runs/det/ncbi-trdev-soup
.venv/bin/python -m bel soup runs/ncbi-detector-transfer-s20/detector runs/det/ncbi-trdev-s43/detector --output-dir runs/det/ncbi-trdev-soup/detector
for d in runs/det/ncbi-trdev-soup/detector runs/det/ncbi-trdev-s43/detector runs/ncbi-detector-transfer-s20/detector; do
  name=$(echo $d | cut -d/ -f2- | tr '/' '-')
  .venv/bin/python eval/detector_decoding.py $d --dataset ncbi-disease --split test --threads 1 \
    --output $out/test_$name.json > $out/test_$name.log 2>&1
done
for linker in ncbi-domain-s19-aligned-hybrid soup-plain-2; do
  rm -rf runs/e2e-soupdet-$linker; cp -r runs/$linker/best runs/e2e-soupdet-$linker
  .venv/bin/python -m bel.saving attach-detector runs/det/ncbi-trdev-soup/detector runs/e2e-soupdet-$linker
  .venv/bin/python -m bel eval runs/e2e-soupdet-$linker --dataset ncbi-disease --split test --end-to-end --detector model \
    --threads 1 --output $out/end_to_end_$linker.json > $out/end_to_end_$linker.log 2>&1
done
echo test-done
# session 23: the same with the namespace reranker soup (runs/soup-namespace-2, eval/runs/ncbi-reranker-soups/)
linker=soup-namespace-2
rm -rf runs/e2e-soupdet-$linker; cp -r runs/$linker/best runs/e2e-soupdet-$linker
.venv/bin/python -m bel.saving attach-detector runs/det/ncbi-trdev-soup/detector runs/e2e-soupdet-$linker
.venv/bin/python -m bel eval runs/e2e-soupdet-$linker --dataset ncbi-disease --split test --end-to-end --detector model \
  --threads 1 --no-progress --output $out/end_to_end_$linker.json > $out/end_to_end_$linker.log 2>&1
