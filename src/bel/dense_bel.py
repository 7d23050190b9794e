"""Dense retrieval over KB names and its fusion with the TF-IDF ranking (Hub-portable core file).

A :class:`DenseIndex` holds an encoder (any ``AutoModel`` with its tokenizer, e.g. a synonym-aligned MiniLM) and one
embedding per retriever row: mean pooling of the last hidden states over the attention mask, L2-normalised (the
SapBERT-style embedding), stored as fp16. Queries are embedded the same way; the top rows by cosine are found exactly,
by chunked matrix products (at most ``batch x chunk_rows`` scores exist at once).

Fusion of the two rankings, per mention, over the union of both rankings' top rows (each row's TF-IDF and dense
cosines are computed exactly for that union; a row outside a TF-IDF ranking has TF-IDF cosine 0):

- ``interpolation``: ``score = w * tfidf_cosine + (1 - w) * max(dense_cosine, 0)``, clipped to [0, 1]; rows with score
  0 are dropped (no evidence). ``w = 1`` is the TF-IDF ranking, ``w = 0`` the dense one.
- ``rrf`` (reciprocal rank fusion, Cormack et al. 2009): entities are ranked in each list by their best row;
  ``score = sum over lists of 1 / (k + rank)``, divided by its maximum ``2 / (k + 1)`` so that it lies in [0, 1]; the
  entity is shown with its row from the list that ranks it higher (TF-IDF on a tie).

Only the standard library, numpy, torch and transformers are imported (torch and transformers when first needed);
``retrieval_bel`` imports this file only when a retriever has a dense part, so a TF-IDF-only one works without it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 32
_CONFIG_FILE = "dense_config.json"
_EMBEDDINGS_FILE = "embeddings.npy"
_CHUNK_ROWS = 32768  # 256 queries x 32768 rows x 4 bytes = 32 MiB of scores at a time
_FLOAT32_CACHE_BYTES = 256 * 2**20
"""Indexes whose float32 embeddings fit in this many bytes keep them in memory after the first search (MEDIC's 77k
rows: 118 MiB), which halves the cost of a small search (the fp16 -> fp32 conversion cost as much as the product);
larger ones (MeSH: 407 MiB) convert one chunk at a time."""


class DenseIndex:
    """An encoder plus one normalised fp16 embedding per retriever row (same rows, same order)."""

    def __init__(self, model, tokenizer, embeddings: np.ndarray, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.embeddings = embeddings
        self.max_length = int(max_length)
        self._float32 = None

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @classmethod
    def build(
        cls,
        encoder_dir: str | os.PathLike,
        names: Sequence[str],
        batch_size: int = 256,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> DenseIndex:
        """Load the encoder in ``encoder_dir`` and embed every name (length-sorted batches)."""
        model, tokenizer = _load_encoder(encoder_dir)
        index = cls(model, tokenizer, np.zeros((0, model.config.hidden_size), dtype=np.float16), max_length)
        started = time.perf_counter()
        index.embeddings = index.encode(names, batch_size=batch_size).astype(np.float16)
        logger.info("embedded %d names with %s in %.1f s", len(names), encoder_dir, time.perf_counter() - started)
        return index

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Normalised mean-pooled embeddings of ``texts``: float32 ``(len(texts), dim)``, in input order."""
        import torch

        output = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad little
        with torch.inference_mode():
            for start in range(0, len(order), max(1, batch_size)):
                chunk = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                output[chunk] = mean_pool(hidden, batch["attention_mask"]).float().numpy()
        return output

    def top_rows(self, queries: np.ndarray, k: int, chunk_rows: int = _CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` rows by cosine for each query embedding: ``(rows, scores)``, each ``(len(queries), k)``,
        best first."""
        import torch

        k = min(k, len(self))
        query = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        best_scores = torch.zeros((len(query), 0), dtype=torch.float32)
        best_rows = torch.zeros((len(query), 0), dtype=torch.int64)
        cached = self._float32_embeddings()
        for start in range(0, len(self), max(1, chunk_rows)):
            if cached is not None:
                block = cached[start : start + chunk_rows]
            else:
                block = torch.from_numpy(np.asarray(self.embeddings[start : start + chunk_rows], dtype=np.float32))
            scores, rows = (query @ block.T).topk(min(k, len(block)), dim=1)
            best_scores = torch.cat([best_scores, scores], dim=1)
            best_rows = torch.cat([best_rows, rows + start], dim=1)
            if best_scores.shape[1] > k:
                best_scores, keep = best_scores.topk(k, dim=1)
                best_rows = best_rows.gather(1, keep)
        return best_rows.numpy(), best_scores.numpy()

    def _float32_embeddings(self):
        """The embeddings as a float32 tensor, kept after the first call when small enough (else None)."""
        if self._float32 is None and self.embeddings.size * 4 <= _FLOAT32_CACHE_BYTES:
            import torch

            self._float32 = torch.from_numpy(np.asarray(self.embeddings, dtype=np.float32))
        return self._float32

    def row_scores(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosine of one query embedding with each of ``rows`` (float32; the one formula every fused score uses)."""
        return np.asarray(self.embeddings[rows], dtype=np.float32) @ np.asarray(query, dtype=np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> list[str]:
        """Write the encoder (safetensors + tokenizer files), the embeddings (``.npy``) and a JSON config; returns the
        names of the files written (what a Hub download must fetch)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)  # transformers 5 writes model.safetensors only
        self.tokenizer.save_pretrained(path)
        np.save(path / _EMBEDDINGS_FILE, np.ascontiguousarray(self.embeddings, dtype=np.float16), allow_pickle=False)
        config = {
            "format_version": 1,
            "max_length": self.max_length,
            "num_rows": len(self),
            "dim": self.dim,
            "dtype": "float16",
            "pooling": "mean, L2-normalised",
        }
        (path / _CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return sorted(p.name for p in path.iterdir() if p.is_file())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> DenseIndex:
        """Load what :meth:`save` wrote (embeddings memory-mapped, never unpickled); ValueError when damaged."""
        path = Path(directory)
        try:
            config = json.loads((path / _CONFIG_FILE).read_text(encoding="utf-8"))
            embeddings = np.load(path / _EMBEDDINGS_FILE, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: the dense retriever files are damaged or missing ({error})") from error
        if embeddings.ndim != 2 or len(embeddings) != config.get("num_rows"):
            raise ValueError(f"{path}: {_EMBEDDINGS_FILE} has shape {embeddings.shape}, config {config}")
        model, tokenizer = _load_encoder(path)
        return cls(model, tokenizer, embeddings, config.get("max_length", DEFAULT_MAX_LENGTH))


def _load_encoder(directory: str | os.PathLike):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(directory), use_safetensors=True).eval()
    return model, AutoTokenizer.from_pretrained(str(directory))


def mean_pool(hidden, attention_mask):
    """Mean of the token states over the attention mask, L2-normalised: `(batch_size, hidden_size)`. The one pooling of
    the dense retriever and of synonym alignment (`bel.alignment`), so aligned encoders embed as they were trained."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


# ---------------------------------------------------------------------------------------------------- fusion
def interpolate(tfidf: np.ndarray, dense: np.ndarray, weight: float) -> np.ndarray:
    """``weight * tfidf + (1 - weight) * max(dense, 0)`` in [0, 1] (float32; weight 1 returns ``tfidf`` exactly)."""
    w = np.float32(weight)
    fused = w * tfidf.astype(np.float32) + (np.float32(1) - w) * np.maximum(dense.astype(np.float32), 0)
    return np.clip(fused, 0, 1)


def reciprocal_rank(
    rows: np.ndarray, entity: np.ndarray, tfidf: np.ndarray, dense: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Entity-level RRF of the TF-IDF ranking (rows with a positive TF-IDF cosine) and the dense ranking of ``rows``.

    ``entity[i]`` is the entity rank of ``rows[i]``. Returns one row per entity (from the list ranking it higher) and
    its normalised score ``sum(1 / (k + rank)) / (2 / (k + 1))``.
    """
    best: dict[int, tuple[float, int, int]] = {}  # entity -> (score, best rank, its row)
    for scores, mask in ((tfidf, tfidf > 0), (dense, np.ones(len(rows), dtype=bool))):
        for rank, (entity_rank, row) in enumerate(_entity_order(rows, entity, scores, mask), start=1):
            score, best_rank, shown = best.get(entity_rank, (0.0, rank + 1, row))
            best[entity_rank] = (score + 1.0 / (k + rank), min(best_rank, rank), row if rank < best_rank else shown)
    shown_rows = np.array([row for _, _, row in best.values()], dtype=np.int64)
    scale = (k + 1) / 2.0
    fused = np.array([min(1.0, score * scale) for score, _, _ in best.values()], dtype=np.float32)
    return shown_rows, fused


def _entity_order(rows: np.ndarray, entity: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> list[tuple[int, int]]:
    """``(entity rank, best row)`` of the entities among the ``mask``-ed rows, by best score (ties: lower row)."""
    order = np.lexsort((rows, -np.round(scores.astype(np.float64), 6)))
    order = order[mask[order]]
    seen: set[int] = set()
    ranked = []
    for position in order.tolist():
        key = int(entity[position])
        if key not in seen:
            seen.add(key)
            ranked.append((key, int(rows[position])))
    return ranked


__all__ = ["DenseIndex", "interpolate", "mean_pool", "reciprocal_rank"]
