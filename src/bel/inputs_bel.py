"""The one path from a document's mentions to the reranker's input (Hub-portable core file).

Training (`bel.examples`), evaluation (`bel eval`), `bel link` and the `entity-linking` pipeline all build their
inputs here, so what is measured is what is shipped:

1. [`retrieval_queries`]: each mention as written, with the short forms its document defines expanded
   ("DM" -> "myotonic dystrophy" after "myotonic dystrophy (DM)").
2. [`retrieve`]: the retriever's top candidates for every query (optionally leaving some sources out, as training
   does with a mention's own document).
3. [`retriever_decides`]: the confidence cascade's rule, whether the retriever alone decides a mention (a unique
   exact match), so that the reranker scores only the rest.
4. [`build_linking_input`]: sentences from [`document_sentences`] (split with every given mention, per passage),
   each candidate shown by [`candidate_text`], and the retriever's scores beside them.

Only the standard library and sibling core files are imported, so the file ships inside a checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from .abbreviations_bel import ShortForms, find_abbreviations
from .retrieval_bel import Candidate, CandidateRetriever
from .sentences_bel import document_sentences
from .tokenization_bel import LinkingInput

Span = tuple[int, int]


def candidate_text(name: str, preferred_name: str, entity_id: str | None = None) -> str:
    """Text the reranker reads for a candidate: the matched KB name, plus `(preferred name)` when it differs, after
    the id's namespace when `entity_id` is given (`config.candidate_namespace`).

    >>> candidate_text("breast cancer", "Breast Neoplasms")
    'breast cancer (Breast Neoplasms)'
    >>> candidate_text("Fever", "fever")
    'Fever'
    >>> candidate_text("C9 deficiency", "C9 Deficiency", "OMIM:613825")
    'OMIM: C9 deficiency'
    """
    text = f"{name} ({preferred_name})" if preferred_name and preferred_name.lower() != name.lower() else name
    return f"{id_namespace(entity_id)}: {text}" if entity_id is not None else text


def id_namespace(entity_id: str) -> str:
    """An id's namespace: everything before its first digit, without a trailing `:` or `_` (the whole id if it has
    no digit).

    >>> id_namespace("MESH:D003920"), id_namespace("OMIM:613825"), id_namespace("HP:0001250"), id_namespace("C535")
    ('MESH:D', 'OMIM', 'HP', 'C')
    """
    prefix = re.match(r"\D*", entity_id).group()
    return prefix.rstrip(":_") or entity_id


def retrieval_queries(text: str, mentions: Sequence[Span], expand: bool = True) -> list[str]:
    """The retriever's query for each mention: its text with the document's defined short forms expanded.

    >>> retrieval_queries("Myotonic dystrophy (DM) is rare. DM patients", [(33, 35)])
    ['Myotonic dystrophy']
    """
    defined = ShortForms(find_abbreviations(text) if expand and mentions else {})  # indexed once per document
    return [defined.expand(text[start:end]) for start, end in mentions]


def retrieve(
    retriever: CandidateRetriever,
    documents: Sequence[tuple[str, Sequence[Span]]],
    top_k: int,
    *,
    exclude_sources: Sequence[Collection[str]] | None = None,
    abbreviations: bool = True,
    types: Sequence[Sequence[str | None]] | None = None,
) -> list[list[list[Candidate]]]:
    """Candidates of every mention of every `(text, mentions)` document: `result[document][mention]`.

    `exclude_sources[d]` hides the aliases contributed only by those sources (e.g. document `d`'s own id) from
    document `d`'s searches. `types[d][m]` searches mention m of document d as of that entity type (the retriever's
    type filter: candidates of the type's KB branch only; None: any). Without exclusions each distinct (query, type)
    is searched once.
    """
    queries = [retrieval_queries(text, mentions, abbreviations) for text, mentions in documents]
    flat = [query for doc_queries in queries for query in doc_queries]
    if not flat:
        return [[] for _ in documents]
    flat_types = [kind for doc_types in types for kind in doc_types] if types is not None else [None] * len(flat)
    if len(flat_types) != len(flat):
        raise ValueError(f"retrieve: {len(flat_types)} types for {len(flat)} mentions")
    # untyped searches go without the keyword: an untyped search is exactly the search from before the type filter
    typed = any(kind is not None for kind in flat_types)
    if exclude_sources is None:
        distinct = sorted(set(zip(flat, flat_types, strict=True)), key=lambda pair: (pair[0], pair[1] or ""))
        kinds = {"types": [kind for _, kind in distinct]} if typed else {}
        searched = retriever.search([query for query, _ in distinct], top_k=top_k, **kinds)
        found = dict(zip(distinct, searched, strict=True))
        results = [found[pair] for pair in zip(flat, flat_types, strict=True)]
    else:
        excluded = [exclude_sources[d] for d, doc_queries in enumerate(queries) for _ in doc_queries]
        kinds = {"types": flat_types} if typed else {}
        results = retriever.search(flat, top_k=top_k, exclude_sources=excluded, **kinds)
    per_document, at = [], 0
    for doc_queries in queries:
        per_document.append(results[at : at + len(doc_queries)])
        at += len(doc_queries)
    return per_document


def retriever_decides(candidates: Sequence[Candidate], searched: int) -> bool:
    """The confidence cascade's rule: the retriever alone decides a mention when its query (abbreviations expanded)
    exactly matches a KB name or training alias (normalised, punctuation ignored) of one entity and of no other.

    `candidates` are the mention's candidates from a search for the top `searched` entities, exact matches first (as
    [`CandidateRetriever.search`] ranks them). A second exact candidate makes the match ambiguous; with `searched >= 2`
    a second exact entity always shows, so a search for one candidate never decides. On the test splits 70-78% of the
    mentions are decided so, and the reranker changed none of their outcomes (eval/RESULTS.md, issue 14).

    >>> exact = Candidate("D1", "fever", "Fever", 1.0, exact=True)
    >>> other = Candidate("D2", "fevers", "Fevers", 0.8)
    >>> retriever_decides([exact, other], 16), retriever_decides([exact, Candidate("D3", "fever", "F", 1.0, True)], 16)
    (True, False)
    >>> retriever_decides([exact], 16), retriever_decides([exact], 1)
    (True, False)
    """
    if not candidates or not candidates[0].exact or searched < 2:
        return False
    return len(candidates) == 1 or not candidates[1].exact


def build_linking_input(
    text: str,
    mentions: Sequence[Span],
    candidates: Sequence[Sequence[Candidate]],
    *,
    passages: Sequence[Span] | None = None,
    keep: Sequence[int] | None = None,
    labels: Sequence[Sequence[float]] | None = None,
    namespaces: bool = False,
) -> LinkingInput:
    """The reranker input of one document.

    `candidates[m]` are mention `m`'s candidates in the order they are scored. `keep` selects the mentions that go into
    the input (default: all); sentences are always split with every mention of `mentions`, so dropping a mention
    (training leaves out mentions whose gold entity is not in the KB) never moves a sentence boundary. `labels`, one
    list per kept mention, are training targets. `namespaces` shows each candidate's id namespace
    (`config.candidate_namespace`).
    """
    passages = sorted(passages) if passages else [(0, len(text))]
    keep = range(len(mentions)) if keep is None else keep
    return LinkingInput(
        text=text,
        mentions=[tuple(mentions[m]) for m in keep],
        candidates=[
            [candidate_text(c.name, c.preferred_name, c.entity_id if namespaces else None) for c in candidates[m]]
            for m in keep
        ],
        sentences=document_sentences(text, mentions, passages),
        passages=passages,
        candidate_scores=[[float(c.score) for c in candidates[m]] for m in keep],
        candidate_labels=[list(row) for row in labels] if labels is not None else None,
    )


__all__ = [
    "build_linking_input",
    "candidate_text",
    "id_namespace",
    "retrieval_queries",
    "retrieve",
    "retriever_decides",
]
