#!/bin/bash
# The per-mode tables and plots of eval/RESULTS.md from the committed JSON records (bench, eval, train summaries).
# Copy a run's runs/<name>/train_summary.json to eval/results/ before running this (done for every run we report).
set -e
py=.venv/bin/python
# dataset, bench JSON, retriever eval, mentions of a full training epoch, eval JSON prefix, train summary prefix, plot
table() {
  local dataset=$1 bench=$2 retriever=$3 mentions=$4 eprefix=$5 tprefix=$6 png=$7 title=$8 evals="" trains=""
  for f in ${eprefix}*.json; do
    local key=${f#"$eprefix"}; key=${key%.json}
    local name=${key/_//}; [ "$key" = pair_paper ] && name=pair
    evals="$evals $name=$f"
    [ -f "$tprefix$key.json" ] && trains="$trains $name=$tprefix$key.json"
  done
  echo "### $dataset"
  $py eval/run_comparison.py --bench "$bench" --train-mentions "$mentions" --eval $evals --train $trains \
      --retriever "$retriever"
  $py eval/plot.py --bench "$bench" --eval $evals --retriever "$retriever" --output "$png" --title "$title"
}
for d in disease chemical; do
  table "BC5CDR $d" eval/bench_bc5cdr-${d}_test.json eval/eval_bc5cdr-${d}_test_retriever.json \
      "$([ $d = disease ] && echo 4135 || echo 4536)" eval/eval_bc5cdr-${d}_test_sub120_ \
      eval/results/train_bc5_${d}_sub120_ eval/speedup_vs_acc_bc5cdr-$d.png \
      "BC5CDR $d test, MiniLM-L6, C=16 (2 shared CPU cores)"
done
# NCBI Disease: the session-4 runs (pair and sentence/compact carry the _noattndrop suffix)
evals="pair=eval/eval_ncbi_test_sub120_pair_noattndrop.json sentence/compact=eval/eval_ncbi_test_sub120_sc_noattndrop.json"
trains="pair=eval/results/train_sub120_pair_noattndrop.json sentence/compact=eval/results/train_sub120_sc_noattndrop.json"
for mt in mention_compact mention_paper sentence_paper passage_compact passage_paper document_compact document_paper; do
  evals="$evals ${mt/_//}=eval/eval_ncbi_test_sub120_$mt.json"; trains="$trains ${mt/_//}=eval/results/train_sub120_$mt.json"
done
echo "### NCBI Disease"
$py eval/run_comparison.py --bench eval/bench_ncbi_test_s4.json --train-mentions 5145 --eval $evals --train $trains \
    --retriever eval/eval_ncbi_test_retriever.json
$py eval/plot.py --bench eval/bench_ncbi_test_s4.json --eval $evals --retriever eval/eval_ncbi_test_retriever.json \
    --output eval/speedup_vs_acc.png
