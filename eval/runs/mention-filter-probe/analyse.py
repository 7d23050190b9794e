import json
import sys
from pathlib import Path

rows = json.loads(Path(sys.argv[1]).read_text())
pred = [r for r in rows if "missed" not in r]
missed = [r for r in rows if "missed" in r]
tp = sum(r["tp"] for r in pred)
fp = len(pred) - tp
gold = tp + len(missed) - 0  # missed = gold spans not predicted exactly (by span)
# note: gold count = tp_span + missed; with types tp may be < span matches; approximate
print("pred", len(pred), "tp", tp, "fp", fp, "missed(spans)", len(missed))


def f1(tp, fp, fn):
    p = tp / (tp + fp)
    r = tp / (tp + fn)
    return 100 * 2 * p * r / (p + r)


G = len(missed) + sum(1 for r in pred if r["tp"])
print("F1", round(f1(tp, fp, G - tp), 2))
fps = [r for r in pred if not r["tp"]]
print(
    "FP overlapping gold",
    sum(r["overlap"] for r in fps),
    "FP decided by retriever",
    sum(r["decided"] == "retriever" for r in fps),
)
print("TP decided by retriever", sum(r["decided"] == "retriever" for r in pred if r["tp"]))
for key in ["retrieval", "prob"]:
    print("threshold sweep on", key, "(reranked mentions only; retriever-decided kept)")
    for t in [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]:
        kept = [r for r in pred if r["decided"] == "retriever" or r[key] >= t]
        ktp = sum(r["tp"] for r in kept)
        kfp = len(kept) - ktp
        print(f"  {t:.1f} kept {len(kept)} tp {ktp} fp {kfp} F1 {f1(ktp, kfp, G - ktp):.2f}")
nonover = sorted([r for r in fps if not r["overlap"]], key=lambda r: r["retrieval"])
print("non-overlapping FPs:", len(nonover))
for r in nonover[:60]:
    print(f"   {r['retrieval']:.3f} {r['prob']:.3f} {r['decided'][:4]} {r['text']!r}")
