"""Regenerate every table and plot of eval/RESULTS.md from the run folders in eval/runs/ (`make results`).

    python eval/make_results.py            # rewrite eval/tables.md, the tables inside eval/RESULTS.md, eval/plots/*.png
    python eval/make_results.py --check    # only compare: exit 1 when RESULTS.md or tables.md is out of date

Each run folder holds one run's JSON records (eval.json, train_summary.json, bench.json, retrieval.json, ...) and a
manifest.json saying how they were made. The tables below name the folders they read; RESULTS.md carries each table
right after a `<!-- make-results:NAME -->` line (the table = the `|` lines that follow) and is rewritten in place
there; the prose around the tables is hand-written. Per-mode tables and plots come from eval/run_comparison.py and eval/plot.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

EVAL = Path(__file__).resolve().parent
RUNS = EVAL / "runs"
PLOTS = EVAL / "plots"
sys.path.insert(0, str(EVAL))

import domain_tables  # noqa: E402
import plot  # noqa: E402
import run_comparison  # noqa: E402

# Per-mode tables: bench run, retriever-only run, training mentions of a full epoch, mode name -> run folder (the
# order is the plot's drawing order), plot file and title.
MODE_TABLES = {
    "ncbi-modes": {
        "bench": "bench-ncbi-test-s4",
        "retriever": "ncbi-retriever",
        "train_mentions": 5145,
        "runs": {
            "pair": "ncbi-sub120-pair-paper",
            "sentence/compact": "ncbi-sub120-sentence-compact",
            **{
                f"{m}/{t}": f"ncbi-sub120-{m}-{t}"
                for m, t in [
                    ("mention", "compact"),
                    ("mention", "paper"),
                    ("sentence", "paper"),
                    ("passage", "compact"),
                    ("passage", "paper"),
                    ("document", "compact"),
                    ("document", "paper"),
                ]
            },
        },
        "plot": "speedup_vs_acc.png",
        "title": "NCBI Disease test, MiniLM-L6, C=16 (2 shared CPU cores)",
    },
    **{
        f"bc5cdr-{d}-modes": {
            "bench": f"bench-bc5cdr-{d}-test",
            "retriever": f"bc5cdr-{d}-retriever",
            "train_mentions": 4135 if d == "disease" else 4536,
            "runs": {
                ("pair" if m == "pair" else f"{m}/{t}"): f"bc5cdr-{d}-sub120-{m}-{t}"
                for m, t in [
                    ("document", "compact"),
                    ("mention", "compact"),
                    ("pair", "paper"),
                    ("passage", "compact"),
                    ("sentence", "compact"),
                ]
            },
            "plot": f"speedup_vs_acc_bc5cdr-{d}.png",
            "title": f"BC5CDR {d} test, MiniLM-L6, C=16 (2 shared CPU cores)",
        }
        for d in ("disease", "chemical")
    },
}

# Every NCBI run with a training summary: label, training data, attention dropout, run folder.
NCBI_RUNS = [
    ("sentence/compact", "120 docs", "0", "ncbi-sub120-sentence-compact"),
    ("pair", "120 docs", "0", "ncbi-sub120-pair-paper"),
    ("sentence/compact", "120 docs", "0.1", "ncbi-sub120-sentence-compact-attndrop0.1"),
    ("pair", "120 docs", "0.1", "ncbi-sub120-pair-paper-attndrop0.1"),
    ("sentence/compact", "593 docs", "0", "ncbi-full-sentence-compact"),
    ("sentence/compact", "593 docs", "0.1", "ncbi-full-sentence-compact-attndrop0.1-2ep"),
]

# Retriever recall with abbreviations expanded (the default) and before (as written): label, run, run before, key.
RECALL = [
    ("NCBI Disease / MEDIC", "ncbi-disease-test", "recall"),
    ("BC5CDR disease / MeSH, all", "bc5cdr-disease-test", "recall"),
    ("BC5CDR disease / MeSH, gold in KB", "bc5cdr-disease-test", "recall_in_kb"),
    ("BC5CDR disease / MEDIC, all", "bc5cdr-disease-test-medic", "recall"),
    ("BC5CDR chemical / MeSH, all (C ids counted as misses)", "bc5cdr-chemical-test", "recall"),
    ("BC5CDR chemical / MeSH, gold in KB", "bc5cdr-chemical-test", "recall_in_kb"),
]
RETRIEVER_SPEED = "retrieval-bc5cdr-disease-test-idle"

MARKED = re.compile(r"^<!-- make-results:([\w-]+) -->\n(?:\|.*\n)*", re.M)


def load(run: str, record: str) -> dict:
    return json.loads((RUNS / run / record).read_text(encoding="utf-8"))


def _round(value: float, places: str) -> str:
    return str(Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _pct(value: float) -> str:
    return _round(100 * value, "0.1")


def mode_table(spec: dict) -> str:
    bench = load(spec["bench"], "bench.json")
    evals = {name: load(run, "eval.json") for name, run in spec["runs"].items()}
    trains = {
        name: load(run, "train_summary.json")
        for name, run in spec["runs"].items()
        if (RUNS / run / "train_summary.json").is_file()
    }
    retriever = load(spec["retriever"], "eval.json")
    return run_comparison.table(bench, evals, trains, retriever, spec["train_mentions"])


def mode_plot(spec: dict, output: Path) -> None:
    argv = ["--bench", str(RUNS / spec["bench"] / "bench.json")]
    argv += ["--eval", *(f"{name}={RUNS / run / 'eval.json'}" for name, run in spec["runs"].items())]
    argv += ["--retriever", str(RUNS / spec["retriever"] / "eval.json"), "--output", str(output)]
    plot.main([*argv, "--title", spec["title"]])


def ncbi_runs_table() -> str:
    retriever_dev = {
        round(load(run, "train_summary.json")["history"][0]["dev/retriever_acc@1"], 3) for *_, run in NCBI_RUNS
    }
    lines = [
        f"| run | data, epochs | attention dropout | train s (per epoch) | dev Acc@1 (60 docs; retriever "
        f"{'/'.join(_pct(v) for v in sorted(retriever_dev))}) | test Acc@1 | test Acc@5 | run folder |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, data, dropout, run in NCBI_RUNS:
        train, metrics = load(run, "train_summary.json"), load(run, "eval.json")
        history = train["history"]
        seconds = " + ".join(f"{h['train_seconds']:,.0f}" for h in history)
        dev = history[train["best_epoch"]]["dev/acc@1"]
        lines.append(
            f"| {label} | {data}, {len(history)} | {dropout} | {seconds} | {_pct(dev)} | {_pct(metrics['acc@1'])} "
            f"| {_pct(metrics['acc@5'])} | `{run}` |"
        )
    return "\n".join(lines)


def recall_table() -> str:
    lines = [
        "| dataset / KB (index = KB names + train aliases) | R@1 | R@5 | R@16 | R@64 | R@1 before (as written) |",
        "|---|---|---|---|---|---|",
    ]
    for label, run, key in RECALL:
        after = load(f"retrieval-{run}-abbreviations", "retrieval.json")[key]
        before = load(f"retrieval-{run}", "retrieval.json")[key]
        cells = " | ".join(_round(after[f"recall@{k}"], "0.001") for k in (1, 5, 16, 64))
        lines.append(f"| {label} | {cells} | {_round(before['recall@1'], '0.001')} |")
    return "\n".join(lines)


def retriever_speed_table() -> str:
    r = load(RETRIEVER_SPEED, "retrieval.json")
    return "\n".join(
        [
            "| index / run | corpus mentions/s (wall) | per CPU-s | distinct mentions/s (wall) | per CPU-s | build s "
            "| peak RSS |",
            "|---|---|---|---|---|---|---|",
            f"| MeSH ({r['indexed_names']:,} rows), {r['dataset']} {r['split']} ({r['mentions']:,} / "
            f"{r['distinct_mentions']:,} distinct), idle | {r['mentions_per_second']:,.0f} "
            f"| {r['mentions_per_cpu_second']:,.0f} | {r['distinct_mentions_per_second']:,.0f} "
            f"| {r['distinct_mentions_per_cpu_second']:,.0f} | {r['build_seconds']:.1f} | {r['peak_rss_mb']:,.0f} MB |",
        ]
    )


END_TO_END = (
    ("NCBI Disease", "ncbi-end-to-end"),
    ("BC5CDR (one checkpoint)", "bc5cdr-end-to-end"),
    ("NCBI Disease, round 2", "ncbi-end-to-end-r2"),
    ("BC5CDR (one checkpoint), round 2", "bc5cdr-end-to-end-r2"),
    ("NCBI Disease, detector on train + dev", "ncbi-end-to-end-r3"),
    ("BC5CDR (one checkpoint), detector on train + dev", "bc5cdr-end-to-end-r3"),
    ("NCBI Disease, detector with KB dictionary, dev picks the epoch", "ncbi-end-to-end-r4-dev"),
    ("BC5CDR (one checkpoint), detector with KB dictionary, dev picks the epoch", "bc5cdr-end-to-end-r4-dev"),
    ("NCBI Disease, detector with KB dictionary, train + dev", "ncbi-end-to-end-r4"),
    ("BC5CDR (one checkpoint), detector with KB dictionary, train + dev", "bc5cdr-end-to-end-r4"),
)


def _prf(scores: dict) -> str:
    return f"{_pct(scores['precision'])} / {_pct(scores['recall'])} / {_pct(scores['f1'])}"


def end_to_end_table() -> str:
    """Raw-text detection and linking (strict P / R / F1) per dataset, detector and entity type."""
    lines = [
        "| test split | detector | type | mentions, strict P / R / F1 | overlap F1 | linking, strict P / R / F1 "
        "| linking, gold in KB, F1 | gold-span Acc@1 | documents/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, run in END_TO_END:
        for detector in ("model", "dictionary"):
            if not (RUNS / run / f"eval_{detector}.json").is_file():  # round 2 ran the dictionary on NCBI only
                continue
            record = load(run, f"eval_{detector}.json")
            e2e = record["end_to_end"]
            detection, linking, in_kb = e2e["detection"], e2e["linking"], e2e["linking_in_kb"]
            rows = [("all", detection["strict"], detection["overlap"], linking, in_kb, _pct(record["acc@1"]))]
            for kind in sorted(detection["per_type"]) if detector == "model" else []:
                typed = detection["per_type"][kind]
                rows.append(
                    (kind, typed["strict"], typed["overlap"], linking["per_type"][kind], in_kb["per_type"][kind], "")
                )
            for kind, strict, overlap, linked, linked_in_kb, acc in rows:
                lines.append(
                    f"| {label} | {detector} | {kind} | {_prf(strict)} | {_pct(overlap['f1'])} | {_prf(linked)} "
                    f"| {_pct(linked_in_kb['f1'])} | {acc} | {e2e['documents_per_second']:.2f} |"
                )
    return "\n".join(lines)


THROUGHPUT = ("throughput-ncbi-test", "throughput-bc5cdr-disease-test")  # gold spans, eval/throughput.py


def throughput_table(run: str) -> str:
    """Gold-span reranking per configuration (eval/throughput.py): Acc@1 on the whole split, speed on its first
    documents (medians of interleaved repeats, one thread)."""
    record = load(run, "throughput.json")
    lines = [
        "| configuration | Acc@1 (Acc@5) | decided by retriever | mentions/s | vs pair | vs packed | forward vs packed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in record["results"].items():
        accuracy = result["accuracy"]
        documents = result["accuracy_documents"]
        where = "" if documents == record["documents"] else f" ({documents} docs)"
        lines.append(
            f"| {name} | {100 * accuracy['acc@1']:.2f}{where} ({100 * accuracy['acc@5']:.2f}) "
            f"| {_pct(accuracy['cascade']['decided_by_retriever_share'])} % | {result['mentions_per_second']:.1f} "
            f"| {result['speedup_vs_pair']:.2f}x | {result['speedup_vs_packed']:.2f}x "
            f"| {result['forward_speedup_vs_packed']:.2f}x |"
        )
    return "\n".join(lines)


def link_profile_table() -> str:
    """`bel link` from raw text on the 500 BC5CDR test abstracts, per configuration (eval/link_profile.py)."""
    return (RUNS / "link-profile-bc5cdr-500" / "link_profile.md").read_text(encoding="utf-8").strip()


def tables() -> dict[str, str]:
    out = {name: mode_table(spec) for name, spec in MODE_TABLES.items()}
    out["ncbi-runs"] = ncbi_runs_table()
    out["retriever-recall"] = recall_table()
    out["retriever-speed"] = retriever_speed_table()
    for run in THROUGHPUT:
        if (RUNS / run / "throughput.json").is_file():
            out[run] = throughput_table(run)
    if (RUNS / "link-profile-bc5cdr-500" / "link_profile.json").is_file():
        out["link-profile"] = link_profile_table()
    if all((RUNS / run / "eval_model.json").is_file() for _, run in END_TO_END):
        out["end-to-end"] = end_to_end_table()
    out.update(domain_tables.tables())
    return out


def fill(text: str, generated: dict[str, str]) -> tuple[str, set[str]]:
    """Replace each marked table of `text`; returns the new text and the names it holds."""
    seen = set()

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in generated:
            raise SystemExit(f"RESULTS.md names an unknown table: {name}")
        seen.add(name)
        return f"<!-- make-results:{name} -->\n{generated[name]}\n"

    return MARKED.sub(replace, text), seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a file is out of date")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots (they need matplotlib)")
    parser.add_argument("--results", type=Path, default=EVAL / "RESULTS.md")
    parser.add_argument("--tables", type=Path, default=EVAL / "tables.md")
    args = parser.parse_args(argv)
    generated = tables()
    doc = [
        "# Generated tables",
        "",
        "Written by `make results` (eval/make_results.py) from eval/runs/; do not edit.",
        "",
    ]
    for name, table in generated.items():
        doc += [f"## {name}", "", table, ""]
    tables_text = "\n".join(doc)
    results_old = args.results.read_text(encoding="utf-8")
    results_new, seen = fill(results_old, generated)
    stale = []
    if results_new != results_old:
        stale.append(str(args.results))
    if not args.tables.is_file() or args.tables.read_text(encoding="utf-8") != tables_text:
        stale.append(str(args.tables))
    if args.check:
        for path in stale:
            print(f"out of date: {path} (run make results)")
        return 1 if stale else 0
    args.results.write_text(results_new, encoding="utf-8")
    args.tables.write_text(tables_text, encoding="utf-8")
    print(tables_text)
    if missing := sorted(set(generated) - seen):
        print(f"(not shown in {args.results.name}: {', '.join(missing)})")
    if not args.no_plots:
        PLOTS.mkdir(exist_ok=True)
        for spec in MODE_TABLES.values():
            mode_plot(spec, PLOTS / spec["plot"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
