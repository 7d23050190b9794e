"""Tables of issue 13 (domain knowledge from the KB) for eval/make_results.py: retriever recall of TF-IDF, dense and
hybrid with the synonym-aligned encoder, and the rerankers of eval/recipes/domain_knowledge.sh beside the current
recipe (plain MiniLM, TF-IDF candidates, same 120 training documents)."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

RUNS = Path(__file__).resolve().parent / "runs"
KS = (1, 5, 16, 64)
METHODS = {"tfidf": "TF-IDF", "dense": "dense (aligned)", "hybrid@0.3": "hybrid, w = 0.3", "hybrid@0.5": "hybrid, w = 0.5", "rrf": "RRF"}  # fmt: skip
RETRIEVAL = [  # label, run folder, record, recall key
    ("NCBI Disease / MEDIC", "ncbi-domain-align", "retrieval.json", "recall"),
    ("BC5CDR disease / MeSH, gold in KB", "bc5cdr-domain-align", "retrieval_bc5cdr-disease.json", "recall_in_kb"),
    ("BC5CDR chemical / MeSH, gold in KB", "bc5cdr-domain-align", "retrieval_bc5cdr-chemical.json", "recall_in_kb"),
]
VARIANTS = {
    "current recipe (plain MiniLM, TF-IDF)": None,
    "aligned encoder, TF-IDF": "aligned-tfidf",
    "aligned encoder, hybrid": "aligned-hybrid",
    "aligned, hybrid, + KB synonyms (1:1)": "aligned-hybrid-kb",
    "KB-only (no corpus anywhere)": "kb-only",
}
DEFAULT_RECIPE = {"NCBI Disease": "ncbi-default-recipe"}
"""`bel train --dataset D --output-dir DIR` with no other option: all training documents, aligned + hybrid."""
RERANKERS = [  # label, run prefix, eval record, current-recipe run, training mentions of the current recipe
    ("NCBI Disease", "ncbi-domain", "eval.json", "ncbi-sub120-sentence-compact"),
    ("BC5CDR disease", "bc5cdr-domain", "eval_bc5cdr-disease.json", "bc5cdr-disease-sub120-sentence-compact"),
    ("BC5CDR chemical", "bc5cdr-domain", "eval_bc5cdr-chemical.json", "bc5cdr-chemical-sub120-sentence-compact"),
]


def _load(run: str, record: str) -> dict | None:
    path = RUNS / run / record
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _r(value: float, places: str = "0.001") -> str:
    return str(Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def retrieval_table() -> str | None:
    lines = ["| dataset / KB | method | R@1 | R@5 | R@16 | R@64 |", "|---|---|---|---|---|---|"]
    for label, run, record, key in RETRIEVAL:
        found = _load(run, record)
        if found is None:
            continue
        for method, name in METHODS.items():
            if method in found.get("methods", {}):
                recall = found["methods"][method][key]
                lines.append(f"| {label} | {name} | " + " | ".join(_r(recall[f"recall@{k}"]) for k in KS) + " |")
    return "\n".join(lines) if len(lines) > 2 else None


def _cells(result: dict, summary: dict | None) -> str:
    """Acc@1, Acc@5, the retriever's Acc@1 and the gain over mentions whose gold id is in the KB (the others can never
    be linked, so dividing by the in-KB share is exact)."""
    share = 1 - result.get("gold_not_in_kb", 0) / result["evaluated"]
    acc1, acc5, retriever = (result[key] / share for key in ("acc@1", "acc@5", "retriever_acc@1"))
    seconds = sum(epoch["train_seconds"] for epoch in summary["history"]) if summary else None
    cost = f"{seconds / 60:.1f}" if seconds is not None else "n/a"
    gain = 100 * (acc1 - retriever)
    return f"{_r(100 * acc1, '0.1')} | {_r(100 * acc5, '0.1')} | {_r(100 * retriever, '0.1')} | {gain:+.1f} | {cost}"


def reranker_table() -> str | None:
    lines = [
        "| test split (gold in KB) | reranker | Acc@1 | Acc@5 | its retriever's Acc@1 | gain | training min |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, prefix, record, current in RERANKERS:
        for name, variant in VARIANTS.items():
            run = current if variant is None else f"{prefix}-{variant}"
            result = _load(run, "eval.json" if variant is None else record)
            if result is not None:
                lines.append(f"| {label} | {name} | {_cells(result, _load(run, 'train_summary.json'))} |")
        default = DEFAULT_RECIPE.get(label)
        if default and (result := _load(default, "eval.json")) is not None:
            cells = _cells(result, _load(default, "train_summary.json"))
            lines.append(f"| {label} | `bel train` defaults (all training documents) | {cells} |")
    return "\n".join(lines) if len(lines) > 2 else None


def tables() -> dict[str, str]:
    found = {"domain-retrieval": retrieval_table(), "domain-rerankers": reranker_table()}
    return {name: table for name, table in found.items() if table}
