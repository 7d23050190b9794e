"""KB-synthesised reranker training (bel.kb_examples, issue 13 point 3): KB synonyms as pseudo-mentions that never
retrieve their own name, gold always among the training candidates, seeded, and a linker trained on the KB alone."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bel.kb_examples import held_out_entities, synonym_pool, synthesise_examples
from bel.retrieval_bel import exact_key

from .helpers import FIXTURES, save_tiny_encoder, train_fixture

CORPUS, DEV, KB = FIXTURES / "bel_train_corpus.txt", FIXTURES / "bel_train_dev.txt", FIXTURES / "bel_train_kb.txt"


@pytest.fixture(scope="module")
def data():
    return train_fixture()  # the retriever indexes the KB and the corpus mentions as aliases


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def _matched_name(candidate_text: str) -> str:
    """The KB name a candidate matched (`inputs_bel.candidate_text` appends ` (preferred name)`)."""
    return candidate_text.split(" (")[0]


def test_pseudo_mentions_never_retrieve_their_own_name(data):
    kb, _, retriever = data
    examples = synthesise_examples(kb, retriever, 8, 40, seed=3)
    names = [e.input.text for e in examples]
    assert len(examples) == 40 and len(set(names)) == sum(len(v) for v in synonym_pool(kb).values())
    for example in examples:
        (mention,) = example.input.mentions
        name = example.input.text[mention[0] : mention[1]]
        assert exact_key(name) not in {exact_key(_matched_name(c)) for c in example.input.candidates[0]}
        # without the exclusion the name finds itself first: the check above is not vacuous
        assert exact_key(retriever.search([name], top_k=1)[0][0].name) == exact_key(name)
    # an entity whose names share one exact key ("Fever|fever") cannot lose its name and stay findable; preferred names
    # are never pseudo-mentions (they are shown inside the gold candidate's text)
    preferred = {exact_key(entity.name) for entity in kb}
    assert "MESH:D005334" not in synonym_pool(kb)
    assert not {exact_key(n) for n in names} & preferred


def test_gold_is_among_the_training_candidates(data):
    kb, _, retriever = data
    examples = synthesise_examples(kb, retriever, 2, 60, seed=0)  # 2 candidates: retrieval often misses the gold
    injected = 0
    for example in examples:
        (labels,) = example.input.candidate_labels
        (gold,) = example.gold_ids
        (ids,) = example.candidate_ids
        assert 1 <= len(ids) <= 2 and sum(labels) >= 1 and [i in gold for i in ids] == [bool(x) for x in labels]
        injected += not any(i in gold for i in example.retrieved_ids[0])
    assert injected > 0  # the injection path was exercised
    dev = synthesise_examples(kb, retriever, 2, 60, seed=0, training=False)
    assert any(not any(i in e.gold_ids[0] for i in e.candidate_ids[0]) for e in dev)  # evaluation: no injection


def test_synthesis_is_deterministic_and_held_out_entities_stay_out(data):
    kb, _, retriever = data

    def summary(examples):
        return [(e.input.text, e.candidate_ids, e.input.candidate_labels) for e in examples]

    first = synthesise_examples(kb, retriever, 4, 25, seed=7, mentions_per_document=2)
    assert summary(first) == summary(synthesise_examples(kb, retriever, 4, 25, seed=7, mentions_per_document=2))
    assert summary(first) != summary(synthesise_examples(kb, retriever, 4, 25, seed=8, mentions_per_document=2))
    # two names per document: one sentence (passage) each, so a mention never shares its sentence
    assert all(len(e.input.sentences) == len(e.input.mentions) == 2 for e in first[:-1])
    held = held_out_entities(kb, 5, seed=1)
    assert len(held) == 1 and held == held_out_entities(kb, 5, seed=1)  # at most a tenth of 12 eligible entities
    train = synthesise_examples(kb, retriever, 4, 50, exclude_entities=held)
    dev = synthesise_examples(kb, retriever, 4, 5, entities=held, training=False)
    assert dev and all(e.gold_ids[0][0] in held for e in dev)
    assert len({e.input.text for e in dev}) == len(dev) < 5  # evaluation never repeats a name
    assert not any(e.gold_ids[0][0] in held for e in train)


def test_kb_examples_are_added_to_a_corpus_run(encoder_dir, tmp_path):
    from bel.training import TrainConfig, _data, synthesised_mentions

    files = dict(train_file=str(CORPUS), dev_file=str(DEV), kb_file=str(KB), encoder=str(encoder_dir))
    log = logging.getLogger(__name__)
    _, plain, plain_dev = _data(TrainConfig(**files, num_candidates=4), log)
    _, mixed, mixed_dev = _data(TrainConfig(**files, num_candidates=4, kb_examples=1.5), log)
    corpus_mentions = sum(len(e.gold_ids) for e in plain)
    assert synthesised_mentions(plain) == 0 and corpus_mentions > 0
    assert synthesised_mentions(mixed) == round(1.5 * corpus_mentions)
    assert sum(len(e.gold_ids) for e in mixed) == corpus_mentions + synthesised_mentions(mixed)
    assert [e.doc_id for e in mixed_dev] == [e.doc_id for e in plain_dev]  # dev stays the corpus's


def test_kb_only_options_are_validated():
    from bel.training import TrainConfig

    assert TrainConfig(kb_file=str(KB)).kb_only_run and TrainConfig(dataset="ncbi-disease", kb_only=True).kb_only_run
    assert not TrainConfig(train_file=str(CORPUS), kb_file=str(KB)).kb_only_run
    with pytest.raises(ValueError, match="--kb-file alone"):
        TrainConfig().validate()
    with pytest.raises(ValueError, match="drop --train-file"):
        TrainConfig(train_file=str(CORPUS), kb_file=str(KB), kb_only=True).validate()
    with pytest.raises(ValueError, match="linker only"):
        TrainConfig(kb_file=str(KB), stage="both").validate()
    with pytest.raises(ValueError, match="--kb-examples must be >= 0"):
        TrainConfig(train_file=str(CORPUS), kb_file=str(KB), kb_examples=-1).validate()


def test_kb_only_training_run_saves_a_linker_that_links(encoder_dir, tmp_path):
    from bel import load_linker
    from bel.cli import main

    output = tmp_path / "kb-only"
    options = ["--kb-file", str(KB), "--encoder", str(encoder_dir), "--output-dir", str(output)]
    options += ["--num-candidates", "4", "--batch-size", "2000", "--epochs", "1", "--kb-examples-count", "40"]
    assert main(["train", *options, "--learning-rate", "1e-3", "--warmup-ratio", "0"]) == 0
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["kb_only"] and summary["train_mentions"] == summary["kb_mentions"] == 40
    assert "dev/acc@1" in summary["history"][0]  # dev: the held-out entities' synonyms
    best = output / "best"
    readme = (best / "README.md").read_text(encoding="utf-8")
    assert "KB-only linker" in readme and "held-out KB synonyms" in readme
    assert "Training data: none (a KB-only linker)" in readme
    # the default recipe: the encoder synonym-aligned on the KB, a hybrid retriever saved with the linker
    assert "synonym-aligned" in readme and (best / "retriever" / "dense" / "embeddings.npy").is_file()
    linked = load_linker(best)("Carriers of breast carcinoma often had cardiac failure.")
    assert [m["text"] for m in linked] == ["breast carcinoma", "cardiac failure"]
    assert [m["entity_id"] for m in linked] == ["MESH:D001943", "MESH:D006333"]  # exact names: the cascade decides
