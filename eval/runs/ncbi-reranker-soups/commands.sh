set -e
export BEL_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cd /work/main
out=eval/runs/ncbi-reranker-soups
mkdir -p $out
.venv/bin/python -m bel.manifest $out/manifest.json -- bash runs/soup_rerankers.sh
rm -rf runs/soup-*
soup() { name=$1; shift; .venv/bin/python -m bel soup "$@" --output-dir runs/soup-$name/best; }
soup plain-2 runs/ncbi-domain-s19-aligned-hybrid/best runs/ncbi-plain-s21-seed43/best
soup plain-3 runs/ncbi-domain-s19-aligned-hybrid/best runs/ncbi-plain-s21-seed43/best runs/ncbi-plain-all-s21/best
soup namespace-2 runs/ncbi-namespace-s21/best runs/ncbi-namespace-s21-seed43/best
soup namespace-3 runs/ncbi-namespace-s21/best runs/ncbi-namespace-s21-seed43/best runs/ncbi-namespace-all-s21/best
for name in plain-2 plain-3 namespace-2 namespace-3; do
  for split in dev test; do
    .venv/bin/python -m bel eval runs/soup-$name/best \
      --dataset ncbi-disease --split $split --threads 1 --output $out/${name}_$split.json > $out/${name}_$split.log 2>&1
  done
done
echo done
