"""Helpers shared by the tests: tiny tokenizers, models and linkers built in code (no download), the fixture and real
corpora, and subprocess runners that never leave a child process behind.

Fixtures built on these live in tests/conftest.py; `bel` itself is imported lazily so that a broken module fails the
tests that use it, not the collection of every test file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from transformers import BertTokenizer, RobertaTokenizer

    from bel import BelForMultiCandidateLinking, BelTokenizer
    from bel.retrieval_bel import CandidateRetriever

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
TINY_DICTIONARY = {"Disease": ["viral infection", "breast cancer", "fever"]}
"""KB names the tiny detector matches into token types."""

# ------------------------------------------------------------------------------------------------ tokenizers, models
WORDS = ["the", "a", "of", "in", "with", "and", "is", "was", "were", "to", "for", "by", "on", "as", "at", "from", "that", "this", "which", "be", "are", "or", "not", "no", "breast", "ovarian", "colon", "cancer", "cancers", "tumor", "tumors", "carcinoma", "disease", "diseases", "syndrome", "deficiency", "patients", "gene", "genes", "mutation", "mutations", "familial", "hereditary", "risk", "carriers", "protein", "type", "adenomatous", "polyposis", "infection", "fever", "rash", "viral", "acute", "children", "kidney", "renal", "liver", "heart", "failure", "drug", "induced"]  # fmt: skip


def wordpiece_tokenizer() -> BertTokenizer:
    from transformers import BertTokenizer

    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punctuation = list(".,;:()[]-/'\"%+!?&*")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *punctuation, *letters, *[f"##{c}" for c in letters], *WORDS]
    vocab = list(dict.fromkeys(vocab))
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})


def bpe_tokenizer() -> RobertaTokenizer:
    from tokenizers import pre_tokenizers
    from transformers import RobertaTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *alphabet]
    merges = [("Ġ", "c"), ("a", "n"), ("c", "an"), ("Ġc", "an"), ("e", "r"), ("Ġcan", "c"), ("Ġcanc", "er")]
    vocab += ["".join(m) for m in merges]
    vocab = list(dict.fromkeys(vocab))
    return RobertaTokenizer(vocab={token: i for i, token in enumerate(vocab)}, merges=merges)


TINY_SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37}


def tiny_model(tokenizer: BelTokenizer, kind: str = "bert", seed: int = 0, **config) -> BelForMultiCandidateLinking:
    import torch
    from transformers import BertConfig, RobertaConfig

    from bel import BelConfig, BelForMultiCandidateLinking

    torch.manual_seed(seed)
    if kind == "bert":
        encoder = BertConfig(vocab_size=len(tokenizer), **TINY_SIZES)
    else:
        encoder = RobertaConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=520,
            type_vocab_size=1,
            **TINY_SIZES,
        )
    return BelForMultiCandidateLinking(BelConfig(encoder=encoder, **config)).eval()


def save_tiny_encoder(path: Path, seed: int = 0) -> Path:
    """A tiny random BERT + WordPiece tokenizer saved like a Hub encoder, to pass as --encoder."""
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = wordpiece_tokenizer()
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=len(tokenizer), **TINY_SIZES)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# ------------------------------------------------------------------------------------------------ data
def tiny_detector(tokenizer, seed: int = 0):
    """A random Disease detector (`MentionDetector`) that reads letter case and `TINY_DICTIONARY` as token types."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    from bel.detection_bel import CASE_TYPES, MentionDetector, bio_labels

    torch.manual_seed(seed)
    labels = bio_labels(["Disease"])
    config = BertConfig(
        vocab_size=len(tokenizer),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **TINY_SIZES,
    )
    config.type_vocab_size = CASE_TYPES * 3
    model = BertForTokenClassification(config)
    with torch.no_grad():  # a head that tags every word as a disease start keeps the test output non-trivial
        model.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    # merge=False keeps one entity per word; letter case and dictionary matches as token types, so a fresh process
    # must rebuild both (and read dictionary.json) to give the same output
    return MentionDetector(
        model, tokenizer, max_length=16, overlap=4, merge=False, case_types=True, dictionary=TINY_DICTIONARY
    )


def real_data_dir(*required: str) -> Path:
    """The real corpora: $BEL_DATA_DIR, else ../shared/data next to the repo; skips when it (or a `required`
    sub-folder) is absent. Tests that call it carry the `data` marker."""
    path = Path(os.environ.get("BEL_DATA_DIR") or DEFAULT_DATA_DIR)
    for folder in (path, *(path / name for name in required)):
        if not folder.is_dir():
            pytest.skip(f"real data not found at {folder}; set BEL_DATA_DIR")
    return path


def train_fixture():
    """The small training fixture (tests/fixtures/bel_train_*): its KB, corpus and the retriever built on both."""
    from bel.data import read_pubtator
    from bel.examples import build_retriever
    from bel.kb import KnowledgeBase

    kb = KnowledgeBase.load(FIXTURES / "bel_train_kb.txt")
    docs = read_pubtator(FIXTURES / "bel_train_corpus.txt")
    return kb, docs, build_retriever(kb, docs)


# ------------------------------------------------------------------------------------------------ a tiny saved linker
KB = [
    ("MESH:D001943", "Breast Neoplasms", ["breast cancer", "breast tumor", "breast carcinoma"]),
    ("MESH:D010051", "Ovarian Neoplasms", ["ovarian cancer", "ovarian tumor"]),
    ("MESH:D003110", "Colonic Neoplasms", ["colon cancer"]),
    ("MESH:D009369", "Neoplasms", ["cancer", "tumor", "tumors", "cancers"]),
    ("MESH:D011125", "Adenomatous Polyposis Coli", ["familial adenomatous polyposis"]),
    ("MESH:D005334", "Fever", ["fever", "pyrexia"]),
    ("MESH:D005076", "Exanthema", ["rash"]),
    ("MESH:D002644", "Chickenpox", ["varicella"]),
    ("MESH:D014777", "Virus Diseases", ["viral infection"]),
    ("MESH:D051437", "Renal Insufficiency", ["kidney failure", "renal failure"]),
    ("MESH:D006333", "Heart Failure", ["heart failure"]),
]
ALL_NAMES = [n for _, name, synonyms in KB for n in (name, *synonyms)]
TEXT = "Varicella is a viral infection with fever and rash. Carriers risk breast cancer and ovarian cancer."
TEXT_MENTIONS = ["Varicella", "viral infection", "fever", "rash", "breast cancer", "ovarian cancer"]  # found in TEXT
SCHEMA = {"start", "end", "text", "type", "entity_id", "entity_name", "score", "decided_by", "candidates"}
# what `save_pretrained` of the model and tokenizer writes: weights, tokenizer and the remote code
CHECKPOINT_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
CHECKPOINT_FILES |= {"configuration_bel.py", "modeling_bel.py", "tokenization_bel.py"}


def tiny_retriever() -> CandidateRetriever:
    from bel.retrieval_bel import CandidateRetriever

    ids, names, preferred = [], [], []
    for entity_id, name, synonyms in KB:
        for k, n in enumerate([name, *synonyms]):
            ids.append(entity_id)
            names.append(n)
            preferred.append(k == 0)
    return CandidateRetriever.build(ids, names, preferred)


def make_linker(tokenizer, directory: Path, mode: str = "mention", seed: int = 0, **config) -> Path:
    from bel import save_linker

    model = tiny_model(tokenizer, mode=mode, seed=seed, num_candidates=4, **config)
    return save_linker(
        directory,
        model,
        tokenizer,
        tiny_retriever(),
        card_data={
            "datasets": ["ncbi-disease"],
            "base_model": "prajjwal1/bert-tiny",
            "eval_results": [{"dataset": "ncbi-disease", "split": "test", "metrics": {"acc@1": 0.5, "mrr": 0.6}}],
        },
    )


ABSTRACTS = [
    (
        "Varicella is a viral infection with fever and rash.",
        "Carriers risk breast cancer and ovarian cancer. Colon cancer is rarer than breast tumor in these families.",
    ),
    ("Heart failure and renal failure.", "Kidney failure follows heart failure in some patients with fever."),
    ("Familial adenomatous polyposis.", "Colon cancer risk is high; tumors appear early. Pyrexia is not typical."),
    ("No entity here.", "This abstract mentions nothing of interest at all."),
    ("Breast carcinoma.", "Breast carcinoma, ovarian tumor and rash."),
]


def write_pubtator_corpus(path: Path, copies: int = 1) -> int:
    """A PubTator file whose mentions are the KB-name matches (some repeated, overlapping ones included)."""
    from bel.matching_bel import MentionMatcher

    matcher = MentionMatcher(ALL_NAMES)
    lines, count = [], 0
    for copy in range(copies):
        for k, (title, abstract) in enumerate(ABSTRACTS):
            pmid = str(1000 + copy * 100 + k)
            text = f"{title} {abstract}"
            lines += [f"{pmid}|t|{title}", f"{pmid}|a|{abstract}"]
            spans = matcher.find(text)
            if "breast cancer" in text:
                start = text.index("breast cancer")
                spans.append((start + 7, start + 13))  # "cancer" inside "breast cancer": overlapping
            for s, e in spans:
                lines.append(f"{pmid}\t{s}\t{e}\t{text[s:e]}\tDisease\tD000001")
                count += 1
            lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return count


# ------------------------------------------------------------------------------------------------ subprocesses
# `accelerate launch` flags for two processes on one machine (with ACCELERATE_USE_CPU=true in the environment)
TWO_PROCESSES = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
TWO_PROCESSES += ["--mixed_precision", "no", "--dynamo_backend", "no"]


def run(args: list[str], env: dict | None = None, timeout: int = 300, cwd: Path | None = None):
    """Run in a session of its own and kill the whole group at the end, so no child (a DDP rank, an accelerate
    worker) outlives a failed or timed-out test."""
    process = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.returncode is None:
            process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def bel(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m bel ARGS` in a fresh interpreter, offline unless `env` says otherwise."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return run([sys.executable, "-m", "bel", "--log-level", "WARNING", *args], environment, timeout)
