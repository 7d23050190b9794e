"""Build a per-mode table of eval/RESULTS.md from `bel bench` / `bel eval` / train JSON files.

eval/make_results.py calls `table()` for every per-mode table; by hand:

    python eval/run_comparison.py --bench eval/runs/bench-ncbi-test-s4/bench.json \
        --eval sentence/compact=eval/runs/ncbi-sub120-sentence-compact/eval.json \
        --retriever eval/runs/ncbi-retriever/eval.json \
        --train sentence/compact=eval/runs/ncbi-sub120-sentence-compact/train_summary.json --train-mentions 5145

Per mode: Acc@1 / Acc@5 (when a trained model was evaluated), training seconds per epoch (a training run's measured
epoch scaled to `--train-mentions`, marked "~" when scaled; "~~" when extrapolated from the benchmark's training
throughput) and its speed-up over pair's measured epoch, the benchmark's inference mentions/s and speed-up over the
strong `pair` baseline with the token-count ideal in parentheses, the benchmark's training speed-up, and the
evaluation's own inference throughput on the whole test split with its ratio to pair's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _pairs(values: list[str]) -> dict[str, dict]:
    out = {}
    for value in values or []:
        name, _, path = value.partition("=")
        out[name] = json.loads(Path(path).read_text(encoding="utf-8"))
    return out


def table(bench: dict, evals: dict, trains: dict, retriever: dict | None, train_mentions: int) -> str:
    def pct(value):
        return "n/m" if value is None else f"{100 * value:.1f}"

    def per_mention(train):
        return train["history"][0]["train_seconds"] / _trained(train)

    pair_train, pair_eval = trains.get("pair"), evals.get("pair", {}).get("mentions_per_second")
    lines = [
        "| mode | template | Acc@1 | Acc@5 | train s/epoch | epoch speed-up vs pair | bench mentions/s "
        "| bench speed-up vs pair (ideal) | fraction of ideal | bench train speed-up | full-test mentions/s "
        "(vs pair) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in bench["results"].items():
        metrics = evals.get(name, {})
        train = trains.get(name)
        epoch_speed = "-"
        if train and train.get("history"):
            epoch = f"{per_mention(train) * train_mentions:.0f}"
            if _trained(train) != train_mentions:
                epoch = f"~{epoch}"
            if pair_train and pair_train.get("history"):
                epoch_speed = f"{per_mention(pair_train) / per_mention(train):.2f}x"
        elif row.get("train_mentions_per_second"):
            epoch = f"~~{train_mentions / row['train_mentions_per_second']:.0f}"
        else:
            epoch = "-"
        ideal = f" ({row['ideal_ratio']:.2f})" if row.get("ideal_ratio") else ""
        train_speed = f"{row['train_speedup_vs_pair']:.2f}x" if row.get("train_speedup_vs_pair") else "-"
        template = row.get("template", "")
        label = name.split("/")[0]
        fraction = f"{row['fraction_of_ideal']:.2f}" if row.get("fraction_of_ideal") else "-"
        full = "-"
        if metrics.get("mentions_per_second"):
            full = f"{metrics['mentions_per_second']:.1f}"
            if pair_eval:
                full += f" ({metrics['mentions_per_second'] / pair_eval:.2f}x)"
        lines.append(
            f"| {label} | {template} | {pct(metrics.get('acc@1'))} | {pct(metrics.get('acc@5'))} | {epoch} "
            f"| {epoch_speed} | {row['mentions_per_second']:.1f} | {row['speedup_vs_pair']:.2f}x{ideal} "
            f"| {fraction} | {train_speed} | {full} |"
        )
    if retriever:
        lines.append(
            f"| retriever only | - | {pct(retriever['acc@1'])} | {pct(retriever['acc@5'])} | - | - | - | - "
            "| - | - | - |"
        )
    return "\n".join(lines)


def _trained(train: dict) -> int:
    return int(train.get("train_mentions") or train["history"][0].get("mentions") or 0) or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--eval", nargs="*", default=[], help="NAME=eval.json (NAME as in the bench results)")
    parser.add_argument("--train", nargs="*", default=[], help="NAME=train_summary.json")
    parser.add_argument("--retriever", help="eval JSON of `bel eval --retriever-only`")
    parser.add_argument("--train-mentions", type=int, default=4905, help="mentions of one full training epoch")
    args = parser.parse_args(argv)
    bench = json.loads(Path(args.bench).read_text(encoding="utf-8"))
    retriever = json.loads(Path(args.retriever).read_text(encoding="utf-8")) if args.retriever else None
    sys.stdout.write(table(bench, _pairs(args.eval), _pairs(args.train), retriever, args.train_mentions) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
