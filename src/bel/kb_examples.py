"""Reranker training examples synthesised from a knowledge base: its synonyms as pseudo-mentions (issue 13, point 3).

A KB names most of its entities several ways ("breast cancer", "breast carcinoma", "Breast Neoplasms"). Each
synonym becomes a mention without context whose gold is its entity, and its candidates come from the retriever with
that name left out of the index (``CandidateRetriever.search(exclude_names=...)``), so the reranker must link it
through the entity's *other* names, as it must link an unseen corpus mention. This is what lets ``bel train``
learn from a KB alone (``--kb-file KB`` without a corpus, or ``--dataset X --kb-only``) and adds KB knowledge to a
corpus run (``--kb-examples R``: R pseudo-mentions per corpus training mention).

Policy:

- Only entities with at least two distinct names (exact keys, ``retrieval_bel.exact_key``) are sampled, so the
  entity stays findable once the pseudo-mention's name is hidden.
- Only non-preferred names are pseudo-mentions by default: a candidate is shown as ``"matched name (preferred
  name)"`` (``inputs_bel.candidate_text``), so a preferred name used as a mention would appear verbatim inside its
  gold candidate's text, a string-match shortcut with nothing to learn.
- The gold is every entity that has the name (a name shared by two entities is ambiguous, not wrong for either).
- Sampling goes round-robin over the entities in a seeded order (one name of every entity before a second name of
  any), so a count below the number of synonyms covers as many entities as possible; larger counts repeat names.
- Candidates, gold injection and shuffling are those of ``build_examples(training=True)`` (``bel.examples``).
- One pseudo-mention per document by default: the packer fills a short sentence's context window with the
  neighbouring text of its document, across sentence boundaries, so names sharing a document would see each other.
- ``held_out_entities`` sets entities aside whose names a KB-only run never trains on, for its dev split.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Sequence

from bel.data.document import Document, Mention, Passage
from bel.examples import DocumentExample, document_example
from bel.kb import KnowledgeBase
from bel.retrieval_bel import CandidateRetriever, exact_key

logger = logging.getLogger(__name__)
SOURCE = "kb-synonym"
"""Passage type and id prefix of the pseudo-documents."""


def synonym_pool(kb: KnowledgeBase, *, include_preferred: bool = False) -> dict[str, list[str]]:
    """Entity id -> the names that can be its pseudo-mentions (one per distinct exact key, in KB order), for every
    entity with at least two distinct exact keys. ``include_preferred`` also offers the preferred name."""
    pool: dict[str, list[str]] = {}
    for entity in kb:
        by_key: dict[str, str] = {}
        for name in (entity.name, *entity.synonyms):
            by_key.setdefault(exact_key(name), name)
        by_key.pop("", None)
        if len(by_key) < 2:
            continue
        preferred = exact_key(entity.name)
        names = [name for key, name in by_key.items() if include_preferred or key != preferred]
        if names:
            pool[entity.id] = names
    return pool


def name_owners(kb: KnowledgeBase) -> dict[str, tuple[str, ...]]:
    """Exact key -> the entities that have a name with that key (KB order)."""
    owners: dict[str, dict[str, None]] = {}
    for entity_id, name, _ in kb.names():
        owners.setdefault(exact_key(name), {})[entity_id] = None
    return {key: tuple(entities) for key, entities in owners.items()}


def held_out_entities(kb: KnowledgeBase, count: int, seed: int = 0, *, include_preferred: bool = False) -> set[str]:
    """``count`` entities (seeded sample of those with pseudo-mentions) to keep out of KB-synthesised training, so that
    a KB-only run can pick its epoch on names it never trained on. At most a tenth of the entities, at least one."""
    eligible = sorted(synonym_pool(kb, include_preferred=include_preferred))
    if not eligible or count <= 0:
        return set()
    count = max(1, min(count, len(eligible) // 10))
    return set(random.Random(seed).sample(eligible, count))


def sample_names(pool: dict[str, list[str]], count: int, seed: int, *, repeat: bool = True) -> list[tuple[str, str]]:
    """``count`` ``(entity id, name)`` pairs: round-robin over the entities in a seeded order, each entity's names in
    a seeded order, starting over (reshuffled) when every name has been used (``repeat=False``: stopping there)."""
    rng = random.Random(seed)
    chosen: list[tuple[str, str]] = []
    while pool and len(chosen) < count and (repeat or not chosen):
        entities = sorted(pool)
        rng.shuffle(entities)
        orders = {e: rng.sample(pool[e], len(pool[e])) for e in entities}
        for depth in range(max(len(names) for names in orders.values())):
            chosen.extend((e, orders[e][depth]) for e in entities if depth < len(orders[e]))
            if len(chosen) >= count:
                break
    return chosen[:count]


def pseudo_documents(
    samples: Sequence[tuple[str, str]], owners: dict[str, tuple[str, ...]], mentions_per_document: int = 1
) -> list[Document]:
    """Documents of ``mentions_per_document`` pseudo-mentions each: one passage per name (so every name is a sentence
    of its own), the mention spanning the whole passage, gold = every entity with that name (sampled one first)."""
    per_document = max(1, mentions_per_document)
    documents = []
    for first in range(0, len(samples), per_document):
        passages, mentions, offset = [], [], 0
        for entity_id, name in samples[first : first + per_document]:
            gold = (entity_id, *(e for e in owners.get(exact_key(name), ()) if e != entity_id))
            passages.append(Passage(SOURCE, offset, name))
            mentions.append(Mention(offset, offset + len(name), name, ids=gold))
            offset += len(name) + 1
        documents.append(Document(f"{SOURCE}-{first // per_document}", passages, mentions))
    return documents


def synthesise_examples(
    kb: KnowledgeBase,
    retriever: CandidateRetriever,
    num_candidates: int,
    count: int,
    seed: int = 0,
    *,
    mentions_per_document: int = 1,
    entities: Collection[str] | None = None,
    exclude_entities: Collection[str] = (),
    training: bool = True,
    retrieve_k: int | None = None,
    include_preferred: bool = False,
    namespaces: bool = False,
) -> list[DocumentExample]:
    """``count`` KB synonyms as reranker examples (see the module docstring).

    ``entities`` restricts the sampling to those entities (a held-out dev split), ``exclude_entities`` leaves those
    out (the training side of it). ``training=False`` builds evaluation examples: the top ``num_candidates`` as
    retrieved, no gold injection, no shuffle, ``retrieve_k`` (default 64) entities retrieved for recall@k, and no name
    repeated (fewer than ``count`` when the pool is smaller). ``namespaces`` shows each candidate's id namespace.
    Deterministic for a given ``seed``.
    """
    pool = synonym_pool(kb, include_preferred=include_preferred)
    excluded = set(exclude_entities)
    pool = {e: names for e, names in pool.items() if e not in excluded and (entities is None or e in entities)}
    samples = sample_names(pool, count, seed, repeat=training)  # evaluation: every name once at most
    documents = pseudo_documents(samples, name_owners(kb), mentions_per_document)
    retrieve_k = max(retrieve_k or (num_candidates if training else 64), num_candidates)
    rng = random.Random(seed) if training else None
    examples = []
    for document, found in zip(documents, _search(retriever, documents, retrieve_k), strict=True):
        spans = [m.span for m in document.mentions]
        example = document_example(document, spans, found, retriever, num_candidates, kb, rng, retrieve_k, namespaces)
        if example is not None:
            examples.append(example)
    logger.info(
        "synthesised %d pseudo-mentions of %d entities from the KB (%s)",
        sum(len(e.gold_ids) for e in examples),
        len({g[0] for e in examples for g in e.gold_ids}),
        "training" if training else "evaluation",
    )
    return examples


def _search(retriever: CandidateRetriever, documents: Sequence[Document], top_k: int) -> list[list[list]]:
    """Candidates of every pseudo-mention, its own name hidden from the index: ``result[document][mention]``."""
    names = [m.text for d in documents for m in d.mentions]
    found = retriever.search(names, top_k=top_k, exclude_names=[{name} for name in names]) if names else []
    per_document, at = [], 0
    for document in documents:
        per_document.append(found[at : at + len(document.mentions)])
        at += len(document.mentions)
    return per_document
