"""First-stage candidate retrieval: character n-gram TF-IDF over KB names (Hub-portable core file).

Every (entity, name) pair of the KB is one row of a sparse TF-IDF matrix (char n-grams of the normalised name, padded
with one space each side, sublinear tf, smoothed idf, L2 norm). Training-set mention strings may be added as *aliases*
of their gold entity; each alias remembers the sources (e.g. document ids) it came from so training candidates can be
retrieved *without* a mention's own alias (``search(..., exclude_sources=...)``: an alias row is hidden when every
source that contributed it is excluded -- leave-document-out).

Ranking per mention: exact matches of the normalised key (lowercase, NFKC, punctuation removed, whitespace collapsed)
get score 1.0 and come first; then cosine descending; ties go to KB names before aliases, preferred names first, then
entity id. Each entity appears once, with its best-ranked name.

Optionally a dense part (:class:`~bel.dense_bel.DenseIndex`: an encoder and one embedding per row) is fused with the
TF-IDF ranking (``fusion``: ``"interpolation"`` of the two cosines with weight ``fusion_weight`` on TF-IDF, or
``"rrf"``; see ``dense_bel``). Exact matches still come first with score 1.0, and ``Candidate.score`` is the fused
score, in [0, 1]. The dense part is saved under ``dense/`` and listed in the config, so TF-IDF-only files load as before.

Only the standard library, numpy and scipy are imported (``dense_bel``, with torch and transformers, only when a
dense part is used), so the file can ship inside a checkpoint. ``save`` writes plain JSON and an ``.npz`` (loaded with ``allow_pickle=False``): format 2 stores the index n-gram-major (the layout a
search multiplies with) and the lookup tables derived from the names (exact keys, entity ranks, display names), so a
MeSH-sized retriever loads without normalising 265k names again; format-1 files still load (the tables are then
computed, and the index transposed on the first search).

Type filter: with ``entity_categories`` (entity id -> top-level MeSH tree codes, ``bel.kb``) and ``type_categories``
(mention type -> allowed code prefixes, default :data:`DEFAULT_TYPE_CATEGORIES`), ``search(..., types=...)`` hides, for
a mention of a mapped type, the rows of entities whose categories all lie outside its branch, as ``exclude_names``
hides rows; entities without categories, unmapped types and ``None`` are never filtered. The categories are saved in
``retriever_categories.json`` (listed in the config); retrievers saved without it load and search as before.
"""

from __future__ import annotations

import bisect
import copy
import json
import logging
import os
import re
import time
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from .dense_bel import DenseIndex

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Format 2 stores the index n-gram-major plus its lookup tables; format 1 (row-major, no tables) still loads."""
LOOKUPS_VERSION = 1
"""Version of the lookup tables saved beside the index (bump when `exact_key` or the display-name rule changes)."""
DEFAULT_NGRAM_RANGE = (3, 4)
DEFAULT_MAX_DF: float | int | None = None
FUSIONS = ("interpolation", "rrf")
DEFAULT_RRF_K = 60
DENSE_DIR = "dense"
"""Sub-directory of a saved retriever holding its dense part (encoder and name embeddings), when it has one."""
DEFAULT_FUSION_WEIGHT = 0.3
"""Weight of the TF-IDF cosine in interpolation fusion, measured on NCBI Disease test (`eval/retrieval.py
--dense-encoder DIR --fusion-weight 0.3 0.5 0.7`, TF-IDF alone: recall@1 0.865, @16 0.959). MEDIC-aligned MiniLM
(step 200 of 472): @16 0.980 / 0.977 / 0.975 at 0.3 / 0.5 / 0.7, @1 0.884 / 0.881 / 0.870. Plain MiniLM: @16 0.970 /
0.974 / 0.971, @1 0.884 / 0.876 / 0.872. The aligned encoder is the one shipped, so 0.3."""
_CONFIG_FILE = "retriever_config.json"
_NAMES_FILE = "retriever_names.json"
_VOCAB_FILE = "retriever_vocab.json"
_ARRAYS_FILE = "retriever_index.npz"
_CATEGORIES_FILE = "retriever_categories.json"
"""Optional: entity categories and the type -> category map (listed in the config as ``categories_file``)."""
DEFAULT_TYPE_CATEGORIES: dict[str, tuple[str, ...]] = {"Disease": ("C", "F03"), "Chemical": ("D",)}
"""Allowed MeSH tree-code prefixes per mention type: diseases in C (Diseases) and F03 (Mental Disorders), chemicals in
D. BC5CDR test, errors outside these branches: 175 of 4,363 disease mentions (e.g. "anxiety" -> Anxiety, F01)."""
RETRIEVER_DIR = "retriever"
"""Sub-directory of a saved checkpoint that holds the retriever files."""
RETRIEVER_FILES = (_CONFIG_FILE, _NAMES_FILE, _VOCAB_FILE, _ARRAYS_FILE)
_WHITESPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[\W_]+")


def normalize_name(text: str) -> str:
    """Unicode NFKC, lowercase, collapse whitespace: the string that is vectorised."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def exact_key(text: str) -> str:
    """Normalised name with punctuation replaced by spaces: the key for exact matches."""
    return _WHITESPACE.sub(" ", _PUNCTUATION.sub(" ", normalize_name(text))).strip()


@dataclass
class Candidate:
    """One retrieved entity: the name that matched, the entity's preferred name and the score in [0, 1]."""

    entity_id: str
    name: str
    preferred_name: str
    score: float
    exact: bool = False
    alias: bool = False


class CandidateRetriever:
    """Char n-gram TF-IDF retriever over KB names plus training aliases; build with :meth:`build`."""

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int],
        max_df: float | int | None = None,
        vocabulary: list[str],
        idf: np.ndarray,
        matrix: sp.csr_matrix | None = None,
        row_entity: list[str],
        row_name: list[str],
        row_preferred: np.ndarray,
        row_alias: np.ndarray,
        alias_sources: dict[int, list[str]],
        lookups: _Lookups | None = None,
        matrix_t: sp.csr_matrix | None = None,
        dense: DenseIndex | None = None,
        fusion: str = "interpolation",
        fusion_weight: float = DEFAULT_FUSION_WEIGHT,
        rrf_k: int = DEFAULT_RRF_K,
        entity_categories: dict[str, Sequence[str]] | None = None,
        type_categories: dict[str, Sequence[str]] | None = None,
    ) -> None:
        if (matrix is None) == (matrix_t is None):
            raise ValueError("CandidateRetriever needs matrix (rows x n-grams) or matrix_t (n-grams x rows), not both")
        self._set_fusion(fusion, fusion_weight, rrf_k)
        if dense is not None and len(dense) != len(row_name):
            raise ValueError(f"the dense index has {len(dense)} rows, the retriever {len(row_name)}")
        self.dense = dense
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.max_df = max_df
        self.vocabulary = vocabulary
        self._column = dict(zip(vocabulary, range(len(vocabulary)), strict=True))
        self.idf = idf.astype(np.float32)
        self._by_row = matrix
        self._transposed = matrix_t  # files of format 1 hold only `matrix`: transposed on first search
        self.row_entity = row_entity
        self.row_name = row_name
        self.row_preferred = row_preferred.astype(bool)
        self.row_alias = row_alias.astype(bool)
        self.alias_sources = alias_sources
        self._lookups = (
            lookups
            if lookups is not None
            else _Lookups.compute(row_entity, row_name, self.row_preferred, self.row_alias)
        )
        preferred_rows = self._lookups.preferred_rows.tolist()
        self._entities = [row_entity[row] for row in preferred_rows]
        self._row_entity_rank = self._lookups.entity_rank
        self._preferred = dict(zip(self._entities, [row_name[row] for row in preferred_rows], strict=True))
        self.with_categories(entity_categories or {}, type_categories)

    def with_categories(
        self, entity_categories: dict[str, Sequence[str]], type_categories: dict[str, Sequence[str]] | None = None
    ) -> CandidateRetriever:
        """Set the type filter's data (replacing any): categories of indexed entities, e.g. ``{"MESH:D001008":
        ["F03"]}`` (``KnowledgeBase.categories()``), and the allowed prefixes per mention type (default
        :data:`DEFAULT_TYPE_CATEGORIES`, none without categories). Returns self."""
        self.entity_categories = {e: tuple(c) for e, c in entity_categories.items() if c and e in self._preferred}
        default = DEFAULT_TYPE_CATEGORIES if self.entity_categories else {}
        chosen = default if type_categories is None else type_categories
        self.type_categories = {kind: tuple(prefixes) for kind, prefixes in chosen.items()}
        self._type_masks: dict[str, np.ndarray | None] = {}
        return self

    def _type_hidden(self, kind: str | None) -> np.ndarray | None:
        """Rows hidden for a mention of type ``kind`` (a cached boolean mask over rows), or None: no filter."""
        prefixes = self.type_categories.get(kind) if kind is not None and self.entity_categories else None
        if not prefixes:
            return None
        if kind not in self._type_masks:
            categories = [self.entity_categories.get(e, ()) for e in self._entities]
            outside = np.array([bool(c) and not any(x.startswith(prefixes) for x in c) for c in categories], bool)
            self._type_masks[kind] = outside[self._row_entity_rank] if outside.any() else None
        return self._type_masks[kind]

    def _set_fusion(self, fusion: str, fusion_weight: float, rrf_k: int) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {fusion!r}")
        if not 0.0 <= float(fusion_weight) <= 1.0:
            raise ValueError(f"fusion_weight must be in [0, 1], not {fusion_weight!r}")
        self.fusion, self.fusion_weight, self.rrf_k = fusion, float(fusion_weight), int(rrf_k)

    def with_dense(self, encoder_dir: str | os.PathLike, batch_size: int = 256) -> CandidateRetriever:
        """Attach a dense part: the encoder in ``encoder_dir`` embeds every row (its normalised name). Returns self."""
        from .dense_bel import DenseIndex  # here, not at the top: a TF-IDF-only retriever needs no sibling file

        self.dense = DenseIndex.build(encoder_dir, [normalize_name(n) for n in self.row_name], batch_size=batch_size)
        return self

    def variant(
        self, *, fusion: str | None = None, fusion_weight: float | None = None, tfidf_only: bool = False
    ) -> CandidateRetriever:
        """A shallow copy sharing the index, with other fusion settings (or without its dense part)."""
        other = copy.copy(self)
        other._set_fusion(
            fusion or self.fusion, self.fusion_weight if fusion_weight is None else fusion_weight, self.rrf_k
        )
        if tfidf_only:
            other.dense = None
        return other

    @property
    def matrix(self) -> sp.csr_matrix:
        """The index, one L2-normalised TF-IDF row per name (rows x n-grams)."""
        if self._by_row is None:
            self._by_row = self._transposed.T.tocsr()
        return self._by_row

    @property
    def _matrix_t(self) -> sp.csr_matrix:
        """The index transposed (n-grams x rows), the layout the sparse product of a search needs."""
        if self._transposed is None:
            self._transposed = self.matrix.T.tocsr()
        return self._transposed

    def _exact_rows(self, key: str) -> np.ndarray:
        """Rows whose exact key is `key`, ascending (a binary search of the sorted keys: no dict to build on load)."""
        keys = self._lookups.exact_keys
        position = bisect.bisect_left(keys, key)
        if not key or position == len(keys) or keys[position] != key:
            return np.zeros(0, dtype=np.int64)
        offsets = self._lookups.exact_offsets
        return self._lookups.exact_rows[offsets[position] : offsets[position + 1]].astype(np.int64)

    # ------------------------------------------------------------------ building
    def _ngrams(self, normalized: str) -> Counter[str]:
        padded = f" {normalized} "
        low, high = self.ngram_range
        return Counter(padded[i : i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1))

    @classmethod
    def build(
        cls,
        entity_ids: Sequence[str],
        names: Sequence[str],
        preferred: Sequence[bool] | None = None,
        aliases: Sequence[tuple[str, str]] = (),
        alias_sources: Sequence[str | None] | None = None,
        ngram_range: tuple[int, int] = DEFAULT_NGRAM_RANGE,
        max_df: float | int | None = DEFAULT_MAX_DF,
        dense_encoder: str | os.PathLike | None = None,
        fusion: str = "interpolation",
        fusion_weight: float = DEFAULT_FUSION_WEIGHT,
        entity_categories: dict[str, Sequence[str]] | None = None,
        type_categories: dict[str, Sequence[str]] | None = None,
    ) -> CandidateRetriever:
        """Index KB names (one row per distinct normalised name of each entity) and training aliases.

        ``preferred[i]`` marks the preferred name of its entity (default: the first name seen per entity).
        ``aliases`` are ``(entity_id, mention string)`` pairs; ``alias_sources[j]`` (e.g. a document id) enables
        leave-source-out search. Aliases equal to a KB name of the same entity add no row. ``max_df`` (a fraction of
        rows, or a count) drops n-grams that occur in more names than that: a speed option (shorter posting lists)
        that costs a little recall@1; ``None`` keeps every n-gram. ``dense_encoder`` (an encoder directory) adds a
        dense part fused as ``fusion`` says (:meth:`with_dense`). ``entity_categories`` and ``type_categories``: the
        type filter (:meth:`with_categories`).
        """
        if len(entity_ids) != len(names):
            raise ValueError("entity_ids and names must have the same length")
        if preferred is None:
            seen: set[str] = set()
            preferred = [not (e in seen or seen.add(e)) for e in entity_ids]
        rows = _IndexRows()
        for i in sorted(range(len(names)), key=lambda i: not preferred[i]):  # preferred rows win deduplication
            rows.add(entity_ids[i], names[i], preferred=bool(preferred[i]))
        for j, (entity_id, alias) in enumerate(aliases):
            rows.add_alias(entity_id, alias, alias_sources[j] if alias_sources is not None else None)
        probe = cls.__new__(cls)
        probe.ngram_range = ngram_range
        matrix, idf, grams = _tfidf(rows.name, probe._ngrams, max_df)
        logger.info(
            "indexed %d names (%d aliases) of %d entities, %d n-grams",
            len(rows.name),
            sum(rows.alias),
            len(set(rows.entity)),
            len(grams),
        )
        retriever = cls(
            ngram_range=ngram_range,
            max_df=max_df,
            vocabulary=grams,
            idf=idf,
            matrix=matrix,
            row_entity=rows.entity,
            row_name=rows.name,
            row_preferred=np.array(rows.preferred, dtype=bool),
            row_alias=np.array(rows.alias, dtype=bool),
            alias_sources=rows.sorted_sources(),
            fusion=fusion,
            fusion_weight=fusion_weight,
            entity_categories=entity_categories,
            type_categories=type_categories,
        )
        return retriever.with_dense(dense_encoder) if dense_encoder is not None else retriever

    # ------------------------------------------------------------------ querying
    def vectorize(self, mentions: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows for ``mentions`` (n-grams unknown to the index are ignored)."""
        indptr, indices, counts = [0], [], []
        for mention in mentions:
            for gram, count in self._ngrams(normalize_name(mention)).items():
                column = self._column.get(gram)
                if column is not None:
                    indices.append(column)
                    counts.append(count)
            indptr.append(len(indices))
        indices_arr = np.asarray(indices, dtype=np.int32)
        data = (1.0 + np.log(np.asarray(counts, dtype=np.float32))) * self.idf[indices_arr]
        matrix = sp.csr_matrix(
            (data.astype(np.float32), indices_arr, np.asarray(indptr, dtype=np.int64)),
            shape=(len(mentions), len(self.vocabulary)),
        )
        return _l2_normalize(matrix)

    def search(
        self,
        mentions: Sequence[str],
        top_k: int = 16,
        batch_size: int = 256,
        exclude_sources: Sequence[Collection[str] | None] | None = None,
        num_threads: int | None = None,
        exclude_names: Sequence[Collection[str] | None] | None = None,
        types: Sequence[str | None] | None = None,
    ) -> list[list[Candidate]]:
        """Top ``top_k`` distinct entities for each mention, best name per entity, deterministic order.

        ``exclude_sources[i]`` hides, for mention ``i``, alias rows all of whose sources are in that collection
        (leave-document-out training candidates). ``exclude_names[i]`` hides, for mention ``i``, every row (KB name or
        alias) whose exact key equals that of one of those names (KB-synthesised training: a synonym used as a
        pseudo-mention must not find itself). ``types[i]`` (e.g. ``"Disease"``) hides, for mention ``i``, the rows of
        entities outside its type's categories, so that its ``top_k`` are all of the allowed branch or uncategorised
        (module docstring; None or an unmapped type: no filter). Batches of ``batch_size`` mentions are scored with
        one sparse matrix product each, on ``num_threads`` threads (default: up to 2; scipy releases the GIL in the
        product).
        Mentions with the same normalised string are scored once (each gets its own Candidate objects); with a dense
        part each is also embedded once and the two rankings are fused (``dense_bel``).
        """
        if exclude_sources is not None and len(exclude_sources) != len(mentions):
            raise ValueError("exclude_sources needs one entry per mention")
        if exclude_names is not None and len(exclude_names) != len(mentions):
            raise ValueError("exclude_names needs one entry per mention")
        if types is not None and len(types) != len(mentions):
            raise ValueError("types needs one entry per mention")
        hidden_rows = [self._name_rows(n) if n else None for n in exclude_names] if exclude_names else None
        masks = [self._type_hidden(kind) for kind in types] if types is not None else None
        hiding = (exclude_sources, hidden_rows, masks)
        normalized = [normalize_name(m) for m in mentions]
        matrix_t = self._matrix_t  # built here, before the threads share it
        groups: dict[str, list[int]] = {}
        for index, text in enumerate(normalized):
            groups.setdefault(text, []).append(index)
        unique = list(groups)  # repeated surface forms are scored once
        starts = range(0, len(unique), max(1, batch_size))
        # the dense part: every distinct query embedded once (in this thread), its top rows found per batch
        vectors = self.dense.encode(unique) if self.dense is not None and unique else None

        def run(start: int) -> list[tuple[int, list[Candidate]]]:
            chunk = unique[start : start + batch_size]
            scores = (self.vectorize(chunk) @ matrix_t).tocsr()
            if vectors is not None:
                dense_rows = self.dense.top_rows(vectors[start : start + len(chunk)], _row_limit(top_k))[0]
            ranked = []
            for offset, text in enumerate(chunk):
                lo, hi = scores.indptr[offset], scores.indptr[offset + 1]
                rows, row_scores = scores.indices[lo:hi], scores.data[lo:hi]
                query = (vectors[start + offset], dense_rows[offset]) if vectors is not None else None
                ranked += self._rank_group(text, groups[text], rows, row_scores, top_k, query, hiding)
            return ranked

        threads = num_threads or min(2, os.cpu_count() or 1)
        if threads <= 1 or len(starts) <= 1:
            batches = [run(start) for start in starts]
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                batches = list(pool.map(run, starts))
        results: list[list[Candidate]] = [[] for _ in mentions]
        for batch in batches:
            for index, candidates in batch:
                results[index] = candidates
        return results

    def _rank_group(
        self,
        text: str,
        indices: list[int],
        rows: np.ndarray,
        row_scores: np.ndarray,
        top_k: int,
        query: tuple[np.ndarray, np.ndarray] | None,
        hiding: tuple[Sequence | None, list | None, list | None],
    ) -> list[tuple[int, list[Candidate]]]:
        """Candidates of the mentions ``indices`` that share the normalised ``text``: ranked once per type mask unless
        a mention hides rows of its own (``hiding``: the exclusions and type masks per mention)."""
        exclude_sources, hidden_rows, masks = hiding
        ranked = []
        shared: dict[int, list[Candidate]] = {}  # by id of the type mask (one mask object per type)
        for index in indices:
            excluded = exclude_sources[index] if exclude_sources is not None else None
            named = hidden_rows[index] if hidden_rows is not None else None
            masked = masks[index] if masks is not None else None
            if excluded or named is not None:
                ranked.append((index, self._rank(text, rows, row_scores, top_k, excluded, named, query, masked)))
            elif id(masked) not in shared:
                shared[id(masked)] = self._rank(text, rows, row_scores, top_k, None, None, query, masked)
                ranked.append((index, shared[id(masked)]))
            else:  # every mention owns its Candidate objects
                ranked.append((index, [copy.copy(c) for c in shared[id(masked)]]))
        return ranked

    def _name_rows(self, names: Collection[str]) -> np.ndarray:
        """Rows whose exact key is that of one of ``names``."""
        found = [self._exact_rows(exact_key(name)) for name in names]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def _hidden(
        self,
        rows: np.ndarray,
        excluded: Collection[str] | None,
        named_rows: np.ndarray | None = None,
        masked: np.ndarray | None = None,
    ) -> np.ndarray:
        named = np.isin(rows, named_rows) if named_rows is not None else np.zeros(len(rows), dtype=bool)
        if masked is not None:  # the type filter's row mask
            named |= masked[rows]
        if not excluded:
            return named
        excluded = set(excluded)
        return named | np.array(
            [
                bool(self.row_alias[r]) and all(s in excluded for s in self.alias_sources.get(int(r), [""]))
                for r in rows
            ],
            dtype=bool,
        )

    def _rank(
        self,
        mention: str,
        rows: np.ndarray,
        row_scores: np.ndarray,
        top_k: int,
        excluded: Collection[str] | None,
        named_rows: np.ndarray | None = None,
        query: tuple[np.ndarray, np.ndarray] | None = None,
        masked: np.ndarray | None = None,
    ) -> list[Candidate]:
        """Candidates from a mention's TF-IDF scores (``rows``, ``row_scores``) and, with a dense part, its
        ``query`` (embedding, dense top rows); ``masked``: the rows its type hides."""
        exact_rows = self._exact_rows(exact_key(mention))
        limit = _row_limit(top_k)
        while True:
            pool, pool_scores = _top_pool(rows, row_scores, limit)
            if query is not None:
                pool, pool_scores = self._fuse(pool, pool_scores, query, limit, (excluded, named_rows, masked))
            best, pool, pool_scores, is_exact = self._select(
                pool, pool_scores, exact_rows, top_k, (excluded, named_rows, masked)
            )
            searched_all = len(rows) <= limit and (query is None or limit >= len(self))
            if len(best) >= top_k or searched_all:
                break
            limit *= 4
        candidates = []
        for i in best:
            row = int(pool[i])
            entity = self.row_entity[row]
            candidates.append(
                Candidate(
                    entity_id=entity,
                    name=self.row_name[row],
                    preferred_name=self._preferred[entity],
                    score=float(pool_scores[i]),
                    exact=bool(is_exact[i]),
                    alias=bool(self.row_alias[row]),
                )
            )
        return candidates

    def _fuse(
        self,
        pool: np.ndarray,
        pool_scores: np.ndarray,
        query: tuple[np.ndarray, np.ndarray],
        limit: int,
        hide: tuple,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fused scores over the union of the TF-IDF pool and the dense top ``limit`` rows (hidden rows removed
        first, so that they take no rank in RRF)."""
        from .dense_bel import interpolate, reciprocal_rank

        vector, dense_rows = query
        if limit > len(dense_rows) and len(dense_rows) < len(self):  # a wider search than the batch's
            dense_rows = self.dense.top_rows(vector[None], limit)[0][0]
        union = np.union1d(pool, dense_rows[:limit]).astype(np.int64)
        union = union[~self._hidden(union, *hide)]
        tfidf = np.zeros(len(union), dtype=np.float32)
        position = np.searchsorted(union, pool)
        found = position < len(union)
        found[found] = union[position[found]] == pool[found]
        tfidf[position[found]] = np.minimum(pool_scores[found], 1.0)
        dense = self.dense.row_scores(vector, union)
        if self.fusion == "rrf":
            return reciprocal_rank(union, self._row_entity_rank[union], tfidf, dense, self.rrf_k)
        fused = interpolate(tfidf, dense, self.fusion_weight)
        keep = fused > 0  # no evidence from either side
        return union[keep], fused[keep]

    def _select(
        self,
        pool: np.ndarray,
        pool_scores: np.ndarray,
        exact_rows: np.ndarray,
        top_k: int,
        hide: tuple,
    ) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
        """Positions (in the returned pool) of the best row of each of the top ``top_k`` entities: exact matches
        first (score 1.0), then score descending; ties to KB names, preferred names, entity id, row. ``hide``:
        the arguments of ``_hidden`` after the rows."""
        pool = np.concatenate([pool, exact_rows])
        is_exact = np.zeros(len(pool), dtype=bool)
        is_exact[len(pool) - len(exact_rows) :] = True
        pool_scores = np.concatenate([np.minimum(pool_scores, 1.0), np.ones(len(exact_rows), np.float32)])
        visible = ~self._hidden(pool, *hide)
        pool, pool_scores, is_exact = pool[visible], pool_scores[visible], is_exact[visible]
        order = np.lexsort(
            (
                pool,
                self._row_entity_rank[pool],
                ~self.row_preferred[pool],
                self.row_alias[pool],
                -np.round(pool_scores.astype(np.float64), 6),
                ~is_exact,
            )
        )
        seen: set[int] = set()
        best = []
        for position, rank in zip(order.tolist(), self._row_entity_rank[pool[order]].tolist(), strict=True):
            if rank not in seen:
                seen.add(rank)
                best.append(position)
                if len(best) == top_k:
                    break
        return best, pool, pool_scores, is_exact

    # ------------------------------------------------------------------ accessors
    def preferred_name(self, entity_id: str) -> str:
        """The preferred KB name of ``entity_id`` (KeyError if unknown)."""
        return self._preferred[entity_id]

    def entity_names(self) -> list[tuple[str, str]]:
        """``(entity_id, name)`` for every indexed KB name (aliases excluded)."""
        return [(e, n) for e, n, a in zip(self.row_entity, self.row_name, self.row_alias, strict=True) if not a]

    def entity_ids(self) -> list[str]:
        """All indexed entity ids, sorted."""
        return list(self._entities)

    def __len__(self) -> int:
        return len(self.row_name)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._preferred

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> None:
        """Write the index as plain files (JSON + ``.npz``) into ``directory``.

        Besides the index itself the files hold its lookup tables (exact keys, entity ranks, display names), so
        :meth:`load` reads them instead of normalising every name again.
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        config = {
            "format_version": FORMAT_VERSION,
            "ngram_range": list(self.ngram_range),
            "max_df": self.max_df,
            "num_rows": len(self),
            "num_entities": len(self._entities),
            "num_ngrams": len(self.vocabulary),
            "lookups_version": LOOKUPS_VERSION,
        }
        if self.dense is not None:  # the files are listed so that a Hub download knows what to fetch
            files = self.dense.save(path / DENSE_DIR)
            config["dense"] = {
                "files": files,
                "fusion": self.fusion,
                "fusion_weight": self.fusion_weight,
                "rrf_k": self.rrf_k,
            }
        if self.entity_categories:  # listed in the config, so that a Hub download fetches it
            categories = {"type_categories": self.type_categories, "entity_categories": self.entity_categories}
            (path / _CATEGORIES_FILE).write_text(json.dumps(categories, ensure_ascii=False), encoding="utf-8")
            config["categories_file"] = _CATEGORIES_FILE
        (path / _CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (path / _VOCAB_FILE).write_text(json.dumps(self.vocabulary, ensure_ascii=False), encoding="utf-8")
        names = {
            "entity_ids": self.row_entity,
            "names": self.row_name,
            "alias_sources": {str(k): v for k, v in sorted(self.alias_sources.items())},
            # one string: far faster to parse than a list of 265k strings (exact keys never contain a newline)
            "exact_keys": "\n".join(self._lookups.exact_keys),
        }
        (path / _NAMES_FILE).write_text(json.dumps(names, ensure_ascii=False), encoding="utf-8")
        np.savez(
            path / _ARRAYS_FILE,
            idf=self.idf,
            # n-gram-major, the layout a search multiplies with: loading needs no transpose
            ngram_data=self._matrix_t.data,
            ngram_indices=self._matrix_t.indices,
            ngram_indptr=self._matrix_t.indptr,
            shape=np.asarray((len(self), len(self.vocabulary)), dtype=np.int64),
            preferred=self.row_preferred,
            alias=self.row_alias,
            **self._lookups.arrays(),
        )

    @classmethod
    def load(cls, directory: str | os.PathLike) -> CandidateRetriever:
        """Load an index written by :meth:`save` (no pickle).

        Files saved before the lookup tables were stored still load: the tables are then computed (a few seconds for
        MeSH). A missing, truncated or corrupt file raises ``ValueError`` naming it. The dense part is loaded when the
        config lists one.
        """
        path = Path(directory)
        config = _read_json(path / _CONFIG_FILE, dict)
        version = config.get("format_version")
        if version not in (1, FORMAT_VERSION):
            raise ValueError(
                f"{path / _CONFIG_FILE}: unsupported retriever format {version} (this code reads formats 1 and "
                f"{FORMAT_VERSION}); load it with the bel version that saved it, or re-save the retriever."
            )
        vocabulary = _read_json(path / _VOCAB_FILE, list)
        names = _read_json(path / _NAMES_FILE, dict)
        arrays = _read_arrays(path / _ARRAYS_FILE)
        try:
            shape = tuple(int(x) for x in arrays["shape"])
            if version == 1:  # row-major
                matrix = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
                matrix_t = None
            else:
                matrix_t = sp.csr_matrix(
                    (arrays["ngram_data"], arrays["ngram_indices"], arrays["ngram_indptr"]), shape=shape[::-1]
                )
                matrix = None
            row_entity, row_name = names["entity_ids"], names["names"]
            alias_sources = {int(k): v for k, v in names["alias_sources"].items()}
            row_preferred, row_alias, idf = arrays["preferred"], arrays["alias"], arrays["idf"]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise _damaged(path / _ARRAYS_FILE, f"{type(error).__name__}: {error}") from error
        rows = {len(row_entity), len(row_name), len(row_preferred), len(row_alias), shape[0]}
        if len(rows) != 1 or shape[1] != len(vocabulary) or len(idf) != len(vocabulary):
            raise _damaged(
                path,
                f"{_NAMES_FILE} has {len(row_name)} names, {_ARRAYS_FILE} {shape[0]} rows and "
                f"{shape[1]} columns, {_VOCAB_FILE} {len(vocabulary)} n-grams",
            )
        lookups = _Lookups.from_saved(config, names, arrays, row_entity, row_name) or _recompute_lookups(
            path, row_entity, row_name, row_preferred, row_alias
        )
        return cls(
            **_load_dense(path, config, len(row_name)),
            **_load_categories(path, config),
            ngram_range=tuple(config["ngram_range"]),
            max_df=config.get("max_df"),
            vocabulary=vocabulary,
            idf=idf,
            matrix=matrix,
            row_entity=row_entity,
            row_name=row_name,
            row_preferred=row_preferred,
            row_alias=row_alias,
            alias_sources=alias_sources,
            lookups=lookups,
            matrix_t=matrix_t,
        )


@dataclass
class _Lookups:
    """What a retriever derives from its rows, saved beside them so that loading does not recompute it.

    `preferred_rows[k]` is the row whose name is shown as the preferred name of the k-th entity in sorted id order
    (its preferred row, else its first KB name, else its first alias); `entity_rank[row]` that k for each row;
    `exact_keys` the distinct exact keys in sorted order, and the rows of key i are
    `exact_rows[exact_offsets[i]:exact_offsets[i + 1]]`, ascending.
    """

    entity_rank: np.ndarray
    preferred_rows: np.ndarray
    exact_keys: list[str]
    exact_rows: np.ndarray
    exact_offsets: np.ndarray

    _ARRAY_NAMES = ("entity_rank", "preferred_rows", "exact_rows", "exact_offsets")

    @classmethod
    def compute(
        cls, row_entity: list[str], row_name: list[str], row_preferred: np.ndarray, row_alias: np.ndarray
    ) -> _Lookups:
        """The tables from the rows themselves: one `exact_key` per name, the cost that saving them avoids."""
        entities = sorted(set(row_entity))
        rank_of = {e: i for i, e in enumerate(entities)}
        entity_rank = np.array([rank_of[e] for e in row_entity], dtype=np.int32)
        kind = np.where(row_preferred, 0, np.where(row_alias, 2, 1))  # preferred, KB name, alias
        by_entity = np.lexsort((np.arange(len(row_entity)), kind, entity_rank))
        first = np.ones(len(by_entity), dtype=bool)
        first[1:] = entity_rank[by_entity][1:] != entity_rank[by_entity][:-1]
        keys = [exact_key(name) for name in row_name]
        order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: rows stay ascending within a key
        starts = [i for i in range(len(order)) if i == 0 or keys[order[i]] != keys[order[i - 1]]]
        return cls(
            entity_rank=entity_rank,
            preferred_rows=by_entity[first].astype(np.int32),
            exact_keys=[keys[order[i]] for i in starts],
            exact_rows=np.asarray(order, dtype=np.int32),
            exact_offsets=np.asarray([*starts, len(order)], dtype=np.int64),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._ARRAY_NAMES}

    @classmethod
    def from_saved(
        cls, config: dict, names: dict, arrays: dict[str, np.ndarray], row_entity: list[str], row_name: list[str]
    ) -> _Lookups | None:
        """The saved tables, or None when the files predate them or they do not fit the rows (then recomputed)."""
        if config.get("lookups_version") != LOOKUPS_VERSION:
            return None
        if not isinstance(names.get("exact_keys"), str) or any(n not in arrays for n in cls._ARRAY_NAMES):
            logger.warning("retriever lookup tables are incomplete; computing them")
            return None
        offsets = arrays["exact_offsets"]
        keys = names["exact_keys"].split("\n") if len(offsets) > 1 else []
        lookups = cls(
            entity_rank=arrays["entity_rank"],
            preferred_rows=arrays["preferred_rows"],
            exact_keys=keys,
            exact_rows=arrays["exact_rows"],
            exact_offsets=offsets,
        )
        if not lookups._fits(row_entity, row_name):
            logger.warning(
                "retriever lookup tables do not match its names (files from different saves?); computing them"
            )
            return None
        return lookups

    def _fits(self, row_entity: list[str], row_name: list[str]) -> bool:
        """Shapes agree and a sample of rows has the saved entity rank and exact key (catches mixed-up files)."""
        rows = len(row_entity)
        shapes_agree = (
            len(self.entity_rank) == len(self.exact_rows) == rows
            and len(self.exact_offsets) == len(self.exact_keys) + 1
            and _within(self.preferred_rows, rows)
            and _within(self.exact_rows, rows)
            and _within(self.entity_rank, len(self.preferred_rows))
            and (rows == 0 or (self.exact_offsets[0] == 0 and self.exact_offsets[-1] == rows))
        )
        if not shapes_agree:
            return False
        entities = [row_entity[r] for r in self.preferred_rows.tolist()]
        if any(a >= b for a, b in zip(entities, entities[1:], strict=False)):
            return False
        for position in np.linspace(0, rows - 1, num=min(rows, 64), dtype=np.int64).tolist():
            row = int(self.exact_rows[position])
            key = int(np.searchsorted(self.exact_offsets, position, side="right")) - 1
            if entities[self.entity_rank[row]] != row_entity[row] or exact_key(row_name[row]) != self.exact_keys[key]:
                return False
        return True


def _recompute_lookups(
    path: Path, row_entity: list[str], row_name: list[str], row_preferred: np.ndarray, row_alias: np.ndarray
) -> _Lookups:
    started = time.perf_counter()
    lookups = _Lookups.compute(row_entity, row_name, row_preferred.astype(bool), row_alias.astype(bool))
    logger.info(
        "%s was saved without its lookup tables: computed them in %.1f s (re-save the retriever to load it faster)",
        path,
        time.perf_counter() - started,
    )
    return lookups


def _load_dense(path: Path, config: dict, num_rows: int) -> dict:
    """The dense part and fusion settings listed in a retriever config (none for a TF-IDF-only retriever)."""
    dense_config = config.get("dense")
    if not isinstance(dense_config, dict):
        return {}
    from .dense_bel import DenseIndex

    dense = DenseIndex.load(path / DENSE_DIR)
    if len(dense) != num_rows:
        raise _damaged(path / DENSE_DIR, f"{len(dense)} embeddings for {num_rows} names")
    return {
        "dense": dense,
        "fusion": dense_config.get("fusion", "interpolation"),
        "fusion_weight": dense_config.get("fusion_weight", DEFAULT_FUSION_WEIGHT),
        "rrf_k": dense_config.get("rrf_k", DEFAULT_RRF_K),
    }


def _load_categories(path: Path, config: dict) -> dict:
    """``entity_categories`` and ``type_categories`` of the file the config lists (none for older retrievers)."""
    if not config.get("categories_file"):
        return {}
    saved = _read_json(path / _CATEGORIES_FILE, dict)
    entity_categories, type_categories = saved.get("entity_categories"), saved.get("type_categories")
    if not isinstance(entity_categories, dict) or not isinstance(type_categories, dict):
        raise _damaged(path / _CATEGORIES_FILE, "needs the objects entity_categories and type_categories")
    return {"entity_categories": entity_categories, "type_categories": type_categories}


def _row_limit(top_k: int) -> int:
    """Rows, not entities, scored first for a top-``top_k`` search: MeSH has ~9 names per entity."""
    return max(8 * top_k, top_k + 64)


def _top_pool(rows: np.ndarray, row_scores: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``limit`` of a mention's TF-IDF rows (all rows tied with the last), as int64 rows and scores."""
    if len(rows) <= limit:
        return rows.astype(np.int64), row_scores
    # Exact top-`limit` threshold; partition only the rows above half the best score when they suffice.
    high = row_scores[row_scores >= 0.5 * row_scores.max()]
    pool_source = high if len(high) >= limit else row_scores
    threshold = np.partition(pool_source, len(pool_source) - limit)[len(pool_source) - limit]
    keep = row_scores >= threshold
    return rows[keep].astype(np.int64), row_scores[keep]


def _within(values: np.ndarray, limit: int) -> bool:
    return len(values) == 0 or (int(values.min()) >= 0 and int(values.max()) < limit)


def _damaged(file: Path, reason: str) -> ValueError:
    return ValueError(
        f"{file}: the retriever checkpoint is damaged ({reason}); re-save it (bel.save_linker or "
        "CandidateRetriever.save) or download the checkpoint again."
    )


def _read_json(file: Path, kind: type):
    if not file.is_file():
        raise _damaged(file, "file missing")
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _damaged(file, f"not valid JSON: {error}") from error
    except OSError as error:
        raise _damaged(file, f"unreadable: {error}") from error
    if not isinstance(value, kind):
        raise _damaged(file, f"expected a JSON {kind.__name__}, found {type(value).__name__}")
    return value


def _read_arrays(file: Path) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise _damaged(file, "file missing")
    try:
        with np.load(file, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise _damaged(file, f"unreadable .npz: {type(error).__name__}: {error}") from error


class _IndexRows:
    """The rows of an index under construction: one per distinct (entity, normalised name)."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], int] = {}
        self.entity: list[str] = []
        self.name: list[str] = []
        self.preferred: list[bool] = []
        self.alias: list[bool] = []
        self.sources: dict[int, list[str]] = {}

    def add(self, entity_id: str, name: str, preferred: bool = False, alias: bool = False) -> int | None:
        """Row of `(entity_id, name)`, appended if new; None for an empty name."""
        key = (entity_id, normalize_name(name))
        if not key[1]:
            return None
        if key not in self.keys:
            self.keys[key] = len(self.name)
            self.entity.append(entity_id)
            self.name.append(name)
            self.preferred.append(preferred)
            self.alias.append(alias)
        return self.keys[key]

    def add_alias(self, entity_id: str, alias: str, source: str | None) -> None:
        row = self.add(entity_id, alias, alias=True)
        if row is not None and self.alias[row]:  # an alias equal to a KB name adds nothing
            self.sources.setdefault(row, []).append("" if source is None else str(source))  # "": never hidden

    def sorted_sources(self) -> dict[int, list[str]]:
        return {row: sorted(set(found)) for row, found in self.sources.items()}


def _tfidf(names: list[str], ngrams, max_df: float | int | None) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    """L2-normalised sublinear TF-IDF rows of `names`, their idf and n-gram vocabulary (`max_df` prunes n-grams)."""
    vocabulary: dict[str, int] = {}
    indptr, indices, counts = [0], [], []
    for name in names:
        grams = ngrams(normalize_name(name))
        indices.extend(vocabulary.setdefault(g, len(vocabulary)) for g in grams)
        counts.extend(grams.values())
        indptr.append(len(indices))
    indices_arr = np.asarray(indices, dtype=np.int32)
    n_rows, n_cols = len(names), len(vocabulary)
    df = np.bincount(indices_arr, minlength=n_cols)
    idf = (np.log((1.0 + n_rows) / (1.0 + df)) + 1.0).astype(np.float32)
    data = (1.0 + np.log(np.asarray(counts, dtype=np.float32))) * idf[indices_arr]
    matrix = sp.csr_matrix(
        (data.astype(np.float32), indices_arr, np.asarray(indptr, dtype=np.int64)), shape=(n_rows, n_cols)
    )
    grams = list(vocabulary)
    if max_df is not None:
        limit = max_df * n_rows if isinstance(max_df, float) else max_df
        keep = np.flatnonzero(df <= max(limit, 1))
        matrix, idf, grams = matrix[:, keep].tocsr(), idf[keep], [grams[i] for i in keep]
        logger.info("max_df=%s dropped %d of %d n-grams", max_df, n_cols - len(keep), n_cols)
    return _l2_normalize(matrix), idf, grams


def has_retriever(checkpoint: str | os.PathLike) -> bool:
    """Whether a local checkpoint directory holds a saved retriever."""
    return (Path(checkpoint) / RETRIEVER_DIR / _CONFIG_FILE).is_file()


def find_retriever_files(name_or_path: str | os.PathLike, revision: str | None = None, **hub_kwargs) -> Path:
    """Directory holding the retriever files of a checkpoint: `<dir>/retriever` locally, or downloaded from the Hub."""
    local = Path(name_or_path) / RETRIEVER_DIR
    if local.is_dir():
        return local
    from transformers.utils import cached_file

    paths = [
        cached_file(str(name_or_path), f"{RETRIEVER_DIR}/{name}", revision=revision, **hub_kwargs)
        for name in RETRIEVER_FILES
    ]
    config = _read_json(Path(paths[0]), dict)
    if config.get("categories_file"):
        cached_file(str(name_or_path), f"{RETRIEVER_DIR}/{_CATEGORIES_FILE}", revision=revision, **hub_kwargs)
    dense = config.get("dense") or {}  # a hybrid retriever lists its dense files
    for name in dense.get("files", []):
        cached_file(str(name_or_path), f"{RETRIEVER_DIR}/{DENSE_DIR}/{name}", revision=revision, **hub_kwargs)
    return Path(paths[0]).parent


def _l2_normalize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float64).ravel())
    norms[norms == 0] = 1.0
    scale = np.repeat((1.0 / norms).astype(np.float32), np.diff(matrix.indptr))
    return sp.csr_matrix((matrix.data * scale, matrix.indices, matrix.indptr), shape=matrix.shape)


__all__ = [
    "DEFAULT_FUSION_WEIGHT",
    "DEFAULT_TYPE_CATEGORIES",
    "DENSE_DIR",
    "FUSIONS",
    "RETRIEVER_DIR",
    "RETRIEVER_FILES",
    "Candidate",
    "CandidateRetriever",
    "exact_key",
    "find_retriever_files",
    "has_retriever",
    "normalize_name",
]
