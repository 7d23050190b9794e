"""Corpus readers and writers (PubTator, BioC, JSONL), sentence splitting and dataset loading."""

from __future__ import annotations

from bel.data.document import Document, Mention, Passage, Relation
from bel.data.pubtator import PubTatorFormatError, iter_pubtator, read_pubtator, write_pubtator

__all__ = [
    "Document", "Mention", "Passage", "Relation", "PubTatorFormatError", "iter_pubtator", "read_pubtator",
    "write_pubtator",
]
