set -e
export BEL_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cd /work/main
out=eval/runs/ncbi-detector-soup
mkdir -p $out
while [ ! -f runs/det/ncbi-tr-s42/detector_summary.json ] || [ ! -f runs/det/ncbi-tr-s43/detector_summary.json ]; do sleep 30; done
cp runs/det/ncbi-tr-s42/detector_summary.json $out/detector_summary_s42.json
cp runs/det/ncbi-tr-s43/detector_summary.json $out/detector_summary_s43.json
rm -rf runs/det/ncbi-tr-soup-best runs/det/ncbi-tr-soup-last
.venv/bin/python -m bel soup runs/det/ncbi-tr-s42/detector runs/det/ncbi-tr-s43/detector --output-dir runs/det/ncbi-tr-soup-best/detector
.venv/bin/python -m bel soup runs/det/ncbi-tr-s42/detector-last runs/det/ncbi-tr-s43/detector-last --output-dir runs/det/ncbi-tr-soup-last/detector
for d in soup-last/detector soup-best/detector s42/detector-last s43/detector-last s42/detector s43/detector; do
  name=$(echo $d | tr '/' '-')
  .venv/bin/python eval/detector_decoding.py runs/det/ncbi-tr-$d --dataset ncbi-disease --split dev --threads 1 \
    --output $out/dev_$name.json > $out/dev_$name.log 2>&1
done
echo dev-done
