"""Build reranker inputs (one :class:`~bel.tokenization_bel.LinkingInput` per document) from corpora and a retriever.

Policy (DESIGN section 2, calibration lessons):

- Gold ids are mapped to the KB's primary id (``OMIM:...`` alt ids of MEDIC become their ``MESH:`` entity).
- Training candidates come from an index **without the mention's own alias**: the retriever is built with every
  training mention string as an alias of its gold entity (source = document id) and searched with that document
  excluded (leave-document-out).
- Training: the gold entity is injected (replacing the last candidate) when retrieval missed it, and candidate order is
  shuffled with a seeded RNG. Mentions without ids, or whose gold is not in the KB, are left out of training.
- Evaluation: the top-C candidates as retrieved (no injection, no shuffle); every mention is kept and scored.
- A candidate is shown as the KB name that matched, followed by the preferred name in parentheses when it differs:
  ``"matched name (preferred name)"``. See :func:`candidate_text`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from bel.retrieval_bel import Candidate, CandidateRetriever, expand_abbreviations, find_abbreviations
from bel.tokenization_bel import LinkingInput

logger = logging.getLogger(__name__)


@dataclass
class DocumentExample:
    """A document's reranker input plus what is needed to score it: candidate ids and gold ids per mention."""

    doc_id: str
    input: LinkingInput
    candidate_ids: list[list[str]]
    gold_ids: list[tuple[str, ...]]
    raw_gold_ids: list[tuple[str, ...]] = field(default_factory=list)
    retrieved_ids: list[list[str]] = field(default_factory=list)


def candidate_text(candidate: Candidate) -> str:
    """The text a candidate is shown by: its matched name, plus ``(preferred name)`` when that differs.

    Delegates to the pipeline's rule so training and inference read exactly the same candidate text.
    """
    from bel.pipeline_bel import candidate_text as pipeline_candidate_text

    return pipeline_candidate_text(candidate.name, candidate.preferred_name)


def canonical_gold(ids: Sequence[str], kb) -> tuple[str, ...]:
    """Map gold ids to the KB's primary ids; unknown ids are kept as they are (they can never be retrieved)."""
    if kb is None:
        return tuple(ids)
    return tuple(dict.fromkeys((kb.canonical_id(i) or i) for i in ids))


def build_retriever(kb, train_documents: Sequence = ()) -> CandidateRetriever:
    """Index the KB's names plus every training mention string as an alias of its gold entity (source = doc id)."""
    rows = kb.names()
    aliases, sources = [], []
    for doc in train_documents:
        for mention in doc.mentions:
            for entity_id in canonical_gold(mention.ids, kb):
                if entity_id in kb:
                    aliases.append((entity_id, mention.text))
                    sources.append(doc.id)
    return CandidateRetriever.build(
        [r[0] for r in rows], [r[1] for r in rows], preferred=[r[2] for r in rows], aliases=aliases,
        alias_sources=sources,
    )


def document_spans(doc) -> tuple[list[tuple[int, int]] | None, list[tuple[int, int]]]:
    """Sentence spans (from ``bel.data.sentences`` when available, else the tokenizer's rule) and passage spans."""
    passages = [(p.offset, p.end) for p in sorted(doc.passages, key=lambda p: p.offset)] or [(0, len(doc.text))]
    try:
        from bel.data.sentences import document_sentences
    except ImportError:
        return None, passages
    return [tuple(s) for s in document_sentences(doc)], passages


def build_examples(
    documents: Sequence,
    retriever: CandidateRetriever,
    num_candidates: int,
    *,
    kb=None,
    training: bool = False,
    seed: int = 0,
    retrieve_k: int | None = None,
    abbreviations: bool = True,
) -> list[DocumentExample]:
    """One :class:`DocumentExample` per document with at least one (kept) mention.

    ``training=True`` excludes each document's own aliases, drops mentions without a KB gold id, injects missed gold
    entities and shuffles candidates. ``retrieve_k`` (>= ``num_candidates``) retrieves more entities for recall@k.
    ``abbreviations`` queries the retriever with the short forms each document defines expanded ("DM" -> "myotonic
    dystrophy" after "myotonic dystrophy (DM)"); the model still sees the mention as written.
    """
    rng = random.Random(seed)
    retrieve_k = max(retrieve_k or num_candidates, num_candidates)
    queries, owners = [], []
    for d, doc in enumerate(documents):
        defined = find_abbreviations(doc.text) if abbreviations else {}
        for m, mention in enumerate(doc.mentions):
            queries.append(expand_abbreviations(mention.text, defined))
            owners.append((d, m))
    exclude = [{documents[d].id} for d, _ in owners] if training else None
    results = retriever.search(queries, top_k=retrieve_k, exclude_sources=exclude) if queries else []
    retrieved = dict(zip(owners, results, strict=True))
    examples = []
    for d, doc in enumerate(documents):
        spans, texts, ids, golds, raws, scores, labels, deep = [], [], [], [], [], [], [], []
        for m, mention in enumerate(doc.mentions):
            gold = canonical_gold(mention.ids, kb)
            if training and not any(g in retriever for g in gold):
                continue
            found = retrieved[(d, m)]
            cands = list(found[:num_candidates])
            if training:
                if not any(c.entity_id in gold for c in cands):
                    entity = next(g for g in gold if g in retriever)
                    name = retriever.preferred_name(entity)
                    cands = cands[: num_candidates - 1] + [Candidate(entity, name, name, 0.0)]
                rng.shuffle(cands)
            spans.append((mention.start, mention.end))
            texts.append([candidate_text(c) for c in cands])
            ids.append([c.entity_id for c in cands])
            scores.append([float(c.score) for c in cands])
            labels.append([1.0 if c.entity_id in gold else 0.0 for c in cands])
            golds.append(gold)
            raws.append(tuple(mention.ids))
            deep.append([c.entity_id for c in found])
        if not spans:
            continue
        sentences, passages = document_spans(doc)
        linking = LinkingInput(
            text=doc.text, mentions=spans, candidates=texts, sentences=sentences, passages=passages,
            candidate_scores=scores, candidate_labels=labels,
        )
        examples.append(DocumentExample(doc.id, linking, ids, golds, raws, deep))
    logger.info("built %d documents, %d mentions (%s)", len(examples), sum(len(e.gold_ids) for e in examples),
                "training" if training else "evaluation")
    return examples


# --------------------------------------------------------------------------------------------------- data loading
_FALLBACK_FILES = {
    "ncbi-disease": ("ncbi_disease", {"train": "NCBItrainset_corpus.txt", "dev": "NCBIdevelopset_corpus.txt",
                                      "test": "NCBItestset_corpus.txt"}, "ncbi_disease/medic_06Jul2012.txt", None),
    "bc5cdr-disease": ("bc5cdr", {"train": "CDR_TrainingSet.PubTator.txt", "dev": "CDR_DevelopmentSet.PubTator.txt",
                                  "test": "CDR_TestSet.PubTator.txt"}, "mesh/mesh2024_descriptors.txt.gz", "Disease"),
    "bc5cdr-chemical": ("bc5cdr", {"train": "CDR_TrainingSet.PubTator.txt", "dev": "CDR_DevelopmentSet.PubTator.txt",
                                   "test": "CDR_TestSet.PubTator.txt"}, "mesh/mesh2024_descriptors.txt.gz", "Chemical"),
}
DATASETS = tuple(_FALLBACK_FILES)


def _data_dir(explicit: str | None):
    try:
        from bel.data.datasets import data_dir
    except ImportError:
        import os
        from pathlib import Path

        value = explicit or os.environ.get("BEL_DATA_DIR")
        if not value:
            raise FileNotFoundError("No data directory: pass --data-dir DIR or set BEL_DATA_DIR.") from None
        return Path(value)
    return data_dir(explicit)


def load_documents(dataset: str | None, split: str, data_dir: str | None = None, file: str | None = None) -> list:
    """Documents of ``dataset``'s ``split`` (via ``bel.data.datasets`` when present), or of an explicit file.

    Explicit files are PubTator (``.txt``/``.pubtator``); mentions keep all types.
    """
    from bel.data import read_pubtator

    if file:
        return read_pubtator(file)
    if dataset not in _FALLBACK_FILES:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)} (or pass explicit --*-file options).")
    try:
        from bel.data.datasets import load_corpus
    except ImportError:
        folder, splits, _, mention_type = _FALLBACK_FILES[dataset]
        docs = read_pubtator(_data_dir(data_dir) / folder / splits[split])
        if mention_type:
            for doc in docs:
                doc.mentions = [m for m in doc.mentions if m.type == mention_type]
        return docs
    return load_corpus(dataset, split, data_dir)


def load_knowledge_base(dataset: str | None, data_dir: str | None = None, file: str | None = None):
    """The KB of ``dataset`` (via ``bel.data.datasets`` when present), or an explicit KB file (any ``bel.kb`` format)."""
    from bel.kb import KnowledgeBase

    if file:
        return KnowledgeBase.load(file)
    if dataset not in _FALLBACK_FILES:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)} (or pass --kb-file).")
    try:
        from bel.data.datasets import load_kb
    except ImportError:
        return KnowledgeBase.load(_data_dir(data_dir) / _FALLBACK_FILES[dataset][2])
    return load_kb(dataset, data_dir)
