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
  ``"matched name (preferred name)"`` (``bel.inputs_bel.candidate_text``, the pipeline's rule).
- Queries, candidates, sentences and candidate texts come from ``bel.inputs_bel``, the path the pipeline uses.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from bel.data.datasets import entity_type, load_corpus, load_kb
from bel.data.pubtator import read_pubtator
from bel.inputs_bel import build_linking_input, retrieve, retriever_decides
from bel.kb import KnowledgeBase
from bel.retrieval_bel import Candidate, CandidateRetriever
from bel.tokenization_bel import LinkingInput

logger = logging.getLogger(__name__)


@dataclass
class DocumentExample:
    """A document's reranker input plus what is needed to score it: candidate ids and gold ids per mention, and
    whether the confidence cascade lets the retriever decide each mention (`inputs_bel.retriever_decides`)."""

    doc_id: str
    input: LinkingInput
    candidate_ids: list[list[str]]
    gold_ids: list[tuple[str, ...]]
    raw_gold_ids: list[tuple[str, ...]] = field(default_factory=list)
    retrieved_ids: list[list[str]] = field(default_factory=list)
    retriever_decided: list[bool] = field(default_factory=list)


def mention_types(documents: Sequence, dataset: str | None) -> list[list[str | None]]:
    """Each mention's entity type under `dataset`'s mapping (NCBI classes -> Disease): `types=` of
    [`build_examples`], for candidates of the type's KB branch, as at inference."""
    return [[entity_type(dataset, m.type) for m in doc.mentions] for doc in documents]


def canonical_gold(ids: Sequence[str], kb) -> tuple[str, ...]:
    """Map gold ids to the KB's primary ids; unknown ids are kept as they are (they can never be retrieved)."""
    if kb is None:
        return tuple(ids)
    return tuple(dict.fromkeys((kb.canonical_id(i) or i) for i in ids))


def training_aliases(kb, train_documents: Sequence) -> tuple[list[tuple[str, str]], list[str]]:
    """``(entity id, mention text)`` of every training mention's gold entity found in the KB, with its document id.

    A composite mention ("breast and ovarian cancer") becomes an alias of each of its gold entities.
    """
    aliases, sources = [], []
    for doc in train_documents:
        for mention in doc.mentions:
            for entity_id in canonical_gold(mention.ids, kb):
                if entity_id in kb:
                    aliases.append((entity_id, mention.text))
                    sources.append(doc.id)
    return aliases, sources


def build_retriever(
    kb, train_documents: Sequence = (), dense_encoder: str | None = None, **build_options
) -> CandidateRetriever:
    """Index the KB's names plus every training mention string as an alias of its gold entity (source = doc id).

    ``dense_encoder`` (an encoder directory) adds a dense part fused with the TF-IDF ranking; ``build_options`` go
    to :meth:`CandidateRetriever.build` (``ngram_range``, ``max_df``, ``fusion``, ``fusion_weight``). The KB's entity
    categories (MeSH tree codes, when it has them) go to the retriever's type filter.
    """
    rows = kb.names()
    aliases, sources = training_aliases(kb, train_documents)
    return CandidateRetriever.build(
        [r[0] for r in rows],
        [r[1] for r in rows],
        preferred=[r[2] for r in rows],
        aliases=aliases,
        alias_sources=sources,
        dense_encoder=dense_encoder,
        **{"entity_categories": kb.categories(), **build_options},
    )


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
    types: Sequence[Sequence[str | None]] | None = None,
    namespaces: bool = False,
) -> list[DocumentExample]:
    """One :class:`DocumentExample` per document with at least one (kept) mention, built by ``bel.inputs_bel``.

    ``training=True`` excludes each document's own aliases, drops mentions without a KB gold id, injects missed gold
    entities and shuffles candidates. ``retrieve_k`` (>= ``num_candidates``) retrieves more entities for recall@k.
    ``abbreviations`` queries the retriever with the short forms each document defines expanded ("DM" -> "myotonic
    dystrophy" after "myotonic dystrophy (DM)"); the model still sees the mention as written. ``types[d][m]``, the
    entity type of mention m of document d, restricts its candidates to that type's KB branch (the retriever's type
    filter, ``bel.inputs_bel.retrieve``); None (the default) searches without types. ``namespaces`` shows each
    candidate's id namespace (the model's ``config.candidate_namespace``).
    """
    rng = random.Random(seed)
    retrieve_k = max(retrieve_k or num_candidates, num_candidates)
    spans = [[(m.start, m.end) for m in doc.mentions] for doc in documents]
    found = retrieve(
        retriever,
        [(doc.text, doc_spans) for doc, doc_spans in zip(documents, spans, strict=True)],
        top_k=retrieve_k,
        exclude_sources=[{doc.id} for doc in documents] if training else None,
        abbreviations=abbreviations,
        types=types,
    )
    examples = []
    for doc, doc_spans, doc_found in zip(documents, spans, found, strict=True):
        example = document_example(
            doc, doc_spans, doc_found, retriever, num_candidates, kb, rng if training else None, retrieve_k, namespaces
        )
        if example is not None:
            examples.append(example)
    logger.info(
        "built %d documents, %d mentions (%s)",
        len(examples),
        sum(len(e.gold_ids) for e in examples),
        "training" if training else "evaluation",
    )
    return examples


def checkpoint_examples(
    config, documents: Sequence, retriever: CandidateRetriever, kb, **options
) -> list[DocumentExample]:
    """Evaluation examples as a checkpoint with model config ``config`` reads them (as ``bel eval`` builds them): its
    candidate count and candidate texts, 64 entities retrieved for recall@k; ``options`` go to `build_examples`."""
    return build_examples(
        documents,
        retriever,
        config.num_candidates,
        kb=kb,
        retrieve_k=64,
        namespaces=config.candidate_namespace,
        **options,
    )


def document_example(
    doc, spans, found, retriever, num_candidates, kb, rng, searched, namespaces: bool = False
) -> DocumentExample | None:
    """A document's example; ``rng`` set means training (gold injected, candidates shuffled, unlinkable dropped)."""
    keep, candidates, golds = [], [], []
    for m, mention in enumerate(doc.mentions):
        gold = canonical_gold(mention.ids, kb)
        if rng is not None and not any(g in retriever for g in gold):
            continue
        chosen = list(found[m][:num_candidates])
        if rng is not None:
            chosen = _inject_gold(chosen, gold, retriever, num_candidates)
            rng.shuffle(chosen)
        keep.append(m)
        candidates.append(chosen)
        golds.append(gold)
    if not keep:
        return None
    shown = [[] for _ in doc.mentions]
    for m, chosen in zip(keep, candidates, strict=True):
        shown[m] = chosen
    labels = [
        [1.0 if c.entity_id in gold else 0.0 for c in chosen] for chosen, gold in zip(candidates, golds, strict=True)
    ]
    passages = [(p.offset, p.end) for p in doc.passages] or None
    linking = build_linking_input(
        doc.text, spans, shown, passages=passages, keep=keep, labels=labels, namespaces=namespaces
    )
    return DocumentExample(
        doc.id,
        linking,
        [[c.entity_id for c in chosen] for chosen in candidates],
        golds,
        [tuple(doc.mentions[m].ids) for m in keep],
        [[c.entity_id for c in found[m]] for m in keep],
        [retriever_decides(found[m], searched) for m in keep],
    )


def only_mentions(linking: LinkingInput, keep: Sequence[int]) -> LinkingInput:
    """`linking` with only the mentions `keep` (their candidates, scores and labels); sentences are kept as they are,
    so a sentence boundary never moves (the pipeline builds its cascade input the same way)."""
    fields = ("mentions", "candidates", "candidate_scores", "candidate_labels")
    picked = {name: getattr(linking, name) for name in fields}
    return dataclasses.replace(
        linking, **{name: rows if rows is None else [rows[m] for m in keep] for name, rows in picked.items()}
    )


def hard_mentions_only(examples: Sequence[DocumentExample]) -> list[DocumentExample]:
    """The examples with only the mentions the confidence cascade leaves to the reranker (documents left with none
    are dropped): training on what the reranker will see at inference (`bel train --train-on hard`)."""
    kept_examples = []
    for example in examples:
        keep = [m for m, decided in enumerate(example.retriever_decided) if not decided]
        if not keep:
            continue
        kept_examples.append(
            DocumentExample(
                example.doc_id,
                only_mentions(example.input, keep),
                _pick(example.candidate_ids, keep),
                _pick(example.gold_ids, keep),
                _pick(example.raw_gold_ids, keep),
                _pick(example.retrieved_ids, keep),
                [False] * len(keep),
            )
        )
    return kept_examples


def _pick(rows: list, keep: Sequence[int]) -> list:
    return [rows[m] for m in keep] if rows else rows


def _inject_gold(candidates: list[Candidate], gold: tuple[str, ...], retriever, num_candidates: int) -> list[Candidate]:
    """``candidates`` with the first linkable gold entity replacing the last one when retrieval missed every gold."""
    if any(c.entity_id in gold for c in candidates):
        return candidates
    entity = next(g for g in gold if g in retriever)
    name = retriever.preferred_name(entity)
    return candidates[: num_candidates - 1] + [Candidate(entity, name, name, 0.0)]


# --------------------------------------------------------------------------------------------------- data loading
def load_documents(dataset: str | None, split: str, data_dir: str | None = None, file: str | None = None) -> list:
    """Documents of ``dataset``'s ``split`` (see ``bel.data.datasets``), or of an explicit PubTator file (all types)."""
    if file:
        return read_pubtator(file)
    return load_corpus(dataset, split, data_dir)


def load_knowledge_base(dataset: str | None, data_dir: str | None = None, file: str | None = None) -> KnowledgeBase:
    """The KB of ``dataset`` (see ``bel.data.datasets``), or an explicit KB file (any ``bel.kb`` format)."""
    if file:
        return KnowledgeBase.load(file)
    return load_kb(dataset, data_dir)
