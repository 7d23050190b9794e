"""Corpus readers and writers (PubTator, BioC, JSONL) and dataset loading (sentences: ``bel.sentences_bel``)."""

from __future__ import annotations

from bel.data.datasets import DATASETS, data_dir, load_corpus, load_kb
from bel.data.document import Document, InvalidRecord, Mention, Passage, Relation
from bel.data.jsonl import read_jsonl, write_jsonl
from bel.data.pubtator import PubTatorFormatError, iter_pubtator, read_pubtator, write_pubtator

__all__ = [
    "DATASETS",
    "Document",
    "InvalidRecord",
    "Mention",
    "Passage",
    "PubTatorFormatError",
    "Relation",
    "data_dir",
    "iter_pubtator",
    "load_corpus",
    "load_kb",
    "read_jsonl",
    "read_pubtator",
    "write_jsonl",
    "write_pubtator",
]
