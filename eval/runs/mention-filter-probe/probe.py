"""Per predicted mention on a split: strict TP or FP, retrieval top score, reranker prob, decided_by."""

import json
import sys
from pathlib import Path

from bel.data.datasets import entity_type, load_corpus
from bel.inputs_bel import retrieve
from bel.saving import load_linker

model, dataset, split, out = sys.argv[1:5]
docs = load_corpus(dataset, split)
linker = load_linker(model, "cpu")
items = []
for d in docs:
    it = {"text": d.text}
    if d.passages:
        it["passages"] = [[p.offset, p.end] for p in sorted(d.passages, key=lambda p: p.offset)]
    items.append(it)
pred = linker(items, batch_size=8)
rows = []
for d, ms in zip(docs, pred, strict=False):
    gold = {(m.start, m.end) for m in d.mentions}
    gtype = {(m.start, m.end): entity_type(dataset, m.type) for m in d.mentions}
    spans = [(m["start"], m["end"]) for m in ms]
    cands = retrieve(linker.retriever, [(d.text, spans)], 16)[0] if spans else []
    for m, c in zip(ms, cands, strict=False):
        overl = any(a < m["end"] and b > m["start"] for a, b in gold)
        rows.append(
            {
                "doc": d.id,
                "text": m["text"],
                "tp": (m["start"], m["end"]) in gold and gtype[(m["start"], m["end"])] == m["type"],
                "type": m["type"],
                "overlap": overl,
                "retrieval": c[0].score if c else 0.0,
                "exact": bool(c and c[0].exact),
                "prob": m["score"],
                "decided": m["decided_by"],
                "second": c[1].score if len(c) > 1 else 0.0,
            }
        )
    for a, b in gold:
        if (a, b) not in set(spans):
            rows.append({"doc": d.id, "text": d.text[a:b], "missed": True})
Path(out).write_text(json.dumps(rows, indent=0))
