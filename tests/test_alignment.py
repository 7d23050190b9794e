"""Synonym alignment (`bel align`): batches, loss, and that synonyms end up closer than non-synonyms."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bel.alignment import (
    AlignConfig,
    align,
    contrastive_loss,
    encode_names,
    epoch_batches,
    neighbourhood_order,
    synonym_sets,
)
from bel.kb import KnowledgeBase

from .helpers import FIXTURES, bel, save_tiny_encoder

KB_FILE = FIXTURES / "bel_train_kb.txt"


@pytest.fixture(scope="module")
def sets():
    return synonym_sets(KnowledgeBase.load(KB_FILE))


def test_synonym_sets_dedupe_names_and_add_aliases():
    kb = KnowledgeBase.load(KB_FILE)
    sets = dict(synonym_sets(kb, [("MESH:D010051", "Ovarian Cancer"), ("MESH:D010051", "ovary ca"), ("X:1", "no")]))
    names = sets["MESH:D010051"]
    assert names[0] == "Ovarian Neoplasms"
    assert sum(n.lower() == "ovarian cancer" for n in names) == 1  # one name per normalised key
    assert "ovary ca" in names and "X:1" not in sets  # aliases of unknown entities are dropped
    assert all(len(n) <= 2 for _, n in synonym_sets(kb, max_names=2))


def test_synonym_sets_keep_aliases_under_the_cap():
    kb = KnowledgeBase.load(KB_FILE)
    capped = dict(synonym_sets(kb, [("MESH:D010051", "ovary ca")], max_names=2))
    assert capped["MESH:D010051"] == ["Ovarian Neoplasms", "ovary ca"]
    same_key = dict(synonym_sets(kb, [("MESH:D010051", "ovarian neoplasms")], max_names=2))
    assert same_key["MESH:D010051"][0] == "Ovarian Neoplasms"  # the KB's spelling of its preferred name stays


def test_neighbourhood_order_is_a_permutation(sets):
    order = neighbourhood_order(sets, neighbours=4, seed=0)
    assert sorted(order) == list(range(len(sets)))


def test_epoch_batches_pair_synonyms_without_false_negatives(sets):
    order = neighbourhood_order(sets, neighbours=4, seed=0)
    batches = epoch_batches(sets, order, batch_size=4, seed=1)
    entity_of = {name: entity for entity, names in sets for name in names}
    anchors = Counter()
    for batch in batches:
        entities = [entity_of[anchor] for anchor, _ in batch]
        assert len(set(entities)) == len(entities)  # no entity twice: no false negative in the batch
        for anchor, positive in batch:
            assert entity_of[positive] == entity_of[anchor] and positive != anchor
            anchors[anchor] += 1
    expected = {name for _, names in sets if len(names) > 1 for name in names}
    assert set(anchors) == expected and set(anchors.values()) == {1}  # each name anchors once per epoch


def test_contrastive_loss_prefers_matching_rows():
    import torch

    anchors = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    assert contrastive_loss(anchors, anchors, 0.05) < contrastive_loss(anchors, anchors.roll(1, 0), 0.05)


def _synonym_gap(encoder_dir, sets) -> float:
    """Mean cosine of synonym pairs minus mean cosine of names of different entities."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model, tokenizer = AutoModel.from_pretrained(encoder_dir).eval(), AutoTokenizer.from_pretrained(encoder_dir)
    names = [name for _, group in sets for name in group]
    entity = [index for index, (_, group) in enumerate(sets) for _ in group]
    with torch.no_grad():
        similarity = encode_names(model, tokenizer, names, 32) @ encode_names(model, tokenizer, names, 32).T
    same = torch.tensor(entity)[:, None] == torch.tensor(entity)[None, :]
    off_diagonal = ~torch.eye(len(names), dtype=torch.bool)
    return (similarity[same & off_diagonal].mean() - similarity[~same].mean()).item()


def test_alignment_lowers_its_loss_and_brings_synonyms_closer(tmp_path, sets):
    encoder = save_tiny_encoder(tmp_path / "tiny")
    config = AlignConfig(
        kb_file=str(KB_FILE), encoder=str(encoder), output_dir=str(tmp_path / "out"), epochs=20, batch_size=8,
        learning_rate=2e-3, warmup_ratio=0.0, neighbours=4, log_every=5,
    )  # fmt: skip
    aligned = align(config)
    record = json.loads((tmp_path / "out" / "alignment.json").read_text())
    losses = record["losses"]
    assert record["steps"] == len(losses) > 20
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    before, after = _synonym_gap(encoder, sets), _synonym_gap(aligned, sets)
    assert after > before + 0.1 and after > 0.1


@pytest.mark.slow
def test_bel_align_resumes_from_its_checkpoint(tmp_path):
    encoder = save_tiny_encoder(tmp_path / "tiny")
    common = ["align", "--kb-file", str(KB_FILE), "--encoder", str(encoder), "--output-dir", str(tmp_path / "out")]
    common += ["--batch-size", "4", "--epochs", "3", "--checkpoint-every", "2"]
    first = bel(*common, "--max-steps", "2")
    assert first.returncode == 0, first.stderr
    losses = json.loads((tmp_path / "out" / "alignment.json").read_text())["losses"]
    second = bel(*common, "--max-steps", "5", "--resume-from-checkpoint", "latest")
    assert second.returncode == 0, second.stderr
    record = json.loads((tmp_path / "out" / "alignment.json").read_text())
    assert record["steps"] == 5 and record["losses"][:2] == losses
    assert (tmp_path / "out" / "encoder" / "model.safetensors").is_file()


def test_cached_alignment_runs_once_per_kb_encoder_and_settings(tmp_path, monkeypatch):
    import bel.alignment as alignment

    monkeypatch.setenv("BEL_ALIGN_CACHE", str(tmp_path / "cache"))
    encoder = save_tiny_encoder(tmp_path / "tiny")
    config = AlignConfig(kb_file=str(KB_FILE), encoder=str(encoder), max_steps=2, batch_size=4, neighbours=4)
    first = alignment.cached_alignment(config)
    assert first.parent.parent == tmp_path / "cache" and (first / "model.safetensors").is_file()
    monkeypatch.setattr(alignment, "align", lambda config: pytest.fail("aligned again"))
    assert alignment.cached_alignment(config) == first
    changed = AlignConfig(kb_file=str(KB_FILE), encoder=str(encoder), max_steps=3, batch_size=4, neighbours=4)
    assert alignment.alignment_key(changed) != alignment.alignment_key(config)


def test_bel_align_needs_a_kb():
    with pytest.raises(ValueError, match="--kb-file"):
        align(AlignConfig())
