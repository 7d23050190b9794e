"""Shared fixtures: tiny tokenizers, encoders and linkers built in code (no download). The builders are in helpers.py.

`slow` tests (soak, DDP, crash/resume, sharded `bel link`, fresh interpreters, the Hub round trip) are deselected by
default (`pytest` = `make test-fast`); `make test` runs everything with `-m "slow or not slow"`. `data` tests need the
real corpora (BEL_DATA_DIR, else ../shared/data) and skip without them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# `bel train` aligns its encoder by default and caches the result: never in the user's cache during tests
os.environ["BEL_ALIGN_CACHE"] = tempfile.mkdtemp(prefix="bel-test-align-cache-")

from bel import BelForMultiCandidateLinking, BelTokenizer  # noqa: E402

# re-exported: test modules used to import these from here
from .helpers import REPO, WORDS, bpe_tokenizer, make_linker, tiny_model, wordpiece_tokenizer  # noqa: E402, F401


@pytest.fixture(scope="session")
def bert_tokenizer() -> BelTokenizer:
    return BelTokenizer.from_encoder(wordpiece_tokenizer())


@pytest.fixture(scope="session")
def roberta_tokenizer() -> BelTokenizer:
    return BelTokenizer.from_encoder(bpe_tokenizer())


@pytest.fixture(scope="session")
def bert_model(bert_tokenizer) -> BelForMultiCandidateLinking:
    return tiny_model(bert_tokenizer)


@pytest.fixture(scope="module")
def linker_dir(bert_tokenizer, tmp_path_factory) -> Path:
    """A tiny saved linker (mention mode, helpers.KB), one per test module."""
    return make_linker(bert_tokenizer, tmp_path_factory.mktemp("linker") / "checkpoint")


@pytest.fixture(scope="module")
def linker(linker_dir):
    from bel import load_linker

    return load_linker(linker_dir)


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """A per-test HF_HOME so remote-code module caches never leak between tests."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def corpus(bert_tokenizer, tmp_path_factory) -> tuple[Path, Path, int]:
    """A saved tiny linker (sentence mode), a two-copy PubTator corpus and its number of mentions."""
    from .helpers import write_pubtator_corpus

    root = tmp_path_factory.mktemp("corpus")
    model = make_linker(bert_tokenizer, root / "model", mode="sentence")
    source = root / "input.pubtator"
    count = write_pubtator_corpus(source, copies=2)
    return model, source, count
