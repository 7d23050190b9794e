"""Shared fixtures: tiny tokenizers and encoders built in code (no download), and the real-data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tokenizers import pre_tokenizers  # noqa: E402
from transformers import BertConfig, BertTokenizer, RobertaConfig, RobertaTokenizer  # noqa: E402

from bel import BelConfig, BelForMultiCandidateLinking, BelTokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORDS = ["the", "a", "of", "in", "with", "and", "is", "was", "were", "to", "for", "by", "on", "as", "at", "from", "that", "this", "which", "be", "are", "or", "not", "no", "breast", "ovarian", "colon", "cancer", "cancers", "tumor", "tumors", "carcinoma", "disease", "diseases", "syndrome", "deficiency", "patients", "gene", "genes", "mutation", "mutations", "familial", "hereditary", "risk", "carriers", "protein", "type", "adenomatous", "polyposis", "infection", "fever", "rash", "viral", "acute", "children", "kidney", "renal", "liver", "heart", "failure", "drug", "induced"]


def wordpiece_tokenizer() -> BertTokenizer:
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punctuation = list(".,;:()[]-/'\"%+!?&*")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *punctuation, *letters, *[f"##{c}" for c in letters], *WORDS]
    vocab = list(dict.fromkeys(vocab))
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})


def bpe_tokenizer() -> RobertaTokenizer:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *alphabet]
    merges = [("Ġ", "c"), ("a", "n"), ("c", "an"), ("Ġc", "an"), ("e", "r"), ("Ġcan", "c"), ("Ġcanc", "er")]
    vocab += ["".join(m) for m in merges]
    vocab = list(dict.fromkeys(vocab))
    return RobertaTokenizer(vocab={token: i for i, token in enumerate(vocab)}, merges=merges)


def tiny_model(tokenizer: BelTokenizer, kind: str = "bert", seed: int = 0, **config) -> BelForMultiCandidateLinking:
    import torch

    torch.manual_seed(seed)
    sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}
    if kind == "bert":
        encoder = BertConfig(vocab_size=len(tokenizer), **sizes)
    else:
        encoder = RobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                max_position_embeddings=520, type_vocab_size=1, **sizes)
    return BelForMultiCandidateLinking(BelConfig(encoder=encoder, **config)).eval()


@pytest.fixture(scope="session")
def bert_tokenizer() -> BelTokenizer:
    return BelTokenizer.from_encoder(wordpiece_tokenizer())


@pytest.fixture(scope="session")
def roberta_tokenizer() -> BelTokenizer:
    return BelTokenizer.from_encoder(bpe_tokenizer())


@pytest.fixture(scope="session")
def bert_model(bert_tokenizer) -> BelForMultiCandidateLinking:
    return tiny_model(bert_tokenizer)


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """A per-test HF_HOME so remote-code module caches never leak between tests."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    return home
