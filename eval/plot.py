"""Plot inference speed-up over the `pair` baseline against Acc@1 (eval/plots/speedup_vs_acc.png).

eval/make_results.py draws every plot of eval/RESULTS.md with it; by hand:

    python eval/plot.py --bench eval/runs/bench-ncbi-test-s4/bench.json \
        --eval sentence/compact=eval/runs/ncbi-sub120-sentence-compact/eval.json \
        --retriever eval/runs/ncbi-retriever/eval.json --output eval/plots/speedup_vs_acc.png

Modes whose Acc@1 was not measured are drawn as open markers on the bottom axis (speed only); the token-count ideal of
each mode is drawn as a grey tick at the same height.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--eval", nargs="*", default=[], help="NAME=eval.json (NAME as in the bench results)")
    parser.add_argument("--retriever", help="eval JSON of `bel eval --retriever-only`")
    parser.add_argument("--output", default="eval/plots/speedup_vs_acc.png")
    parser.add_argument("--title", default="NCBI Disease test, MiniLM-L6, C=16 (2 shared CPU cores)")
    args = parser.parse_args(argv)
    bench = json.loads(Path(args.bench).read_text(encoding="utf-8"))["results"]
    evals = {}
    for value in args.eval:
        name, _, path = value.partition("=")
        evals[name] = json.loads(Path(path).read_text(encoding="utf-8"))
    retriever = json.loads(Path(args.retriever).read_text(encoding="utf-8")) if args.retriever else None
    known = [e["acc@1"] for e in evals.values()] + ([retriever["acc@1"]] if retriever else [])
    known += [e["retriever_acc@1"] for e in evals.values()]
    floor = min(known, default=0.7) - 0.05
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in bench.items():
        x = row["speedup_vs_pair"]
        if name in evals:
            y = evals[name]["acc@1"]
            ax.scatter([x], [y], s=60, zorder=3)
        else:
            y = floor
            ax.scatter([x], [y], s=40, facecolors="none", edgecolors="grey", zorder=3)
        if row.get("ideal_ratio"):
            ax.plot([row["ideal_ratio"]], [y], marker="|", color="grey", markersize=12)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, rotation=30)
    lines = [
        (e["retriever_acc@1"], f"{n} checkpoint's own retriever, same {e['evaluated']} mentions", "--")
        for n, e in evals.items()
    ]
    if retriever:
        lines.append(
            (retriever["acc@1"], f"retriever alone (all training aliases), {retriever['evaluated']} mentions", ":")
        )
    drawn = set()
    for value, label, style in lines:
        if round(value, 4) in drawn:  # one line per distinct retriever figure, labels would overprint
            continue
        drawn.add(round(value, 4))
        ax.axhline(value, linestyle=style, color="tab:red", linewidth=1)
        ax.text(0.02, value + 0.002, label, color="tab:red", fontsize=7, transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ax.set_xlabel("inference speed-up over the strong pair baseline (log; grey tick = token-count ideal)")
    ax.set_ylabel("Acc@1 (open markers: not measured)")
    ax.set_title(args.title, fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
