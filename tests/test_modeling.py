"""The model: slot scores, losses, mode consistency, and saving/loading."""

from __future__ import annotations

import pytest
import torch

from bel import BelConfig, BelForMultiCandidateLinking, LinkingInput
from bel.modeling_bel import slot_loss

from .helpers import tiny_model
from .test_packing import sample_document


def scores_by_pair(model, tokenizer, documents, mode, template="paper", batch_size=64):
    sequences = tokenizer.pack(documents, mode=mode, template=template)
    result = {}
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start : start + batch_size]
        batch = tokenizer.pad_packed(chunk)
        with torch.no_grad():
            logits = model(**batch).logits
        for row, seq in enumerate(chunk):
            for k, key in enumerate(zip(seq["slot_document"], seq["slot_mention"], seq["slot_candidate"], strict=True)):
                result[key] = logits[row, k].item()
    return result


@pytest.mark.parametrize("pooling", ["mask", "span"])
def test_pair_and_single_candidate_mention_mode_agree(bert_tokenizer, pooling):
    bert_model = tiny_model(bert_tokenizer, slot_pooling=pooling)
    doc = sample_document(num_candidates=5)
    singles = [LinkingInput(doc.text, doc.mentions, [[cands[c]] for cands in doc.candidates]) for c in range(5)]
    pair_scores = scores_by_pair(bert_model, bert_tokenizer, [doc], "pair", batch_size=7)
    for c, single in enumerate(singles):
        mention_scores = scores_by_pair(bert_model, bert_tokenizer, [single], "mention", batch_size=3)
        for (_, m, _), score in mention_scores.items():
            assert score == pytest.approx(pair_scores[(0, m, c)], abs=1e-5)


def test_span_pooling_scores_the_mean_of_mask_and_candidate_name(bert_tokenizer):
    model = tiny_model(bert_tokenizer, slot_pooling="span")
    doc = sample_document(num_candidates=4)
    batch = bert_tokenizer.pad_packed(bert_tokenizer.pack([doc], mode="mention", template="compact"))
    with torch.no_grad():
        logits = model(**batch).logits
        hidden = model.encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]
        ).last_hidden_state
    row, slot = 1, 2
    start, end = batch["slot_positions"][row, slot].item(), batch["slot_ends"][row, slot].item()
    assert end - start >= 2
    expected = model.scorer(hidden[row, start:end].mean(0)).item()
    assert logits[row, slot].item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="slot_ends"):
        model(**{k: v for k, v in batch.items() if k != "slot_ends"})


def test_packed_modes_score_every_pair_with_finite_logits(bert_model, bert_tokenizer):
    doc = sample_document(num_candidates=8)
    reference = set(scores_by_pair(bert_model, bert_tokenizer, [doc], "pair"))
    for mode in ("mention", "sentence", "passage", "document"):
        scores = scores_by_pair(bert_model, bert_tokenizer, [doc], mode)
        assert set(scores) == reference
        assert all(torch.isfinite(torch.tensor(v)) for v in scores.values())


def test_batch_composition_does_not_change_scores(bert_model, bert_tokenizer):
    doc = sample_document(num_candidates=6)
    one_by_one = scores_by_pair(bert_model, bert_tokenizer, [doc], "mention", batch_size=1)
    together = scores_by_pair(bert_model, bert_tokenizer, [doc], "mention", batch_size=64)
    assert one_by_one.keys() == together.keys()
    assert max(abs(one_by_one[k] - together[k]) for k in together) < 1e-5


def test_listwise_loss_matches_cross_entropy_per_mention():
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.3, -0.2, 0.0, 0.0]])
    labels = torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    groups = torch.tensor([[0, 0, 1, 1], [2, 2, -1, -1]])
    loss = slot_loss(logits, labels, mask, groups, "listwise")
    first = torch.nn.functional.cross_entropy(torch.tensor([[1.0, 2.0]]), torch.tensor([1]))
    third = torch.nn.functional.cross_entropy(torch.tensor([[0.3, -0.2]]), torch.tensor([0]))
    assert loss.item() == pytest.approx(((first + third) / 2).item(), abs=1e-6)  # group 1 has no gold: skipped
    pointwise = slot_loss(logits, labels, mask, groups, "pointwise")
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], labels[mask])
    assert pointwise.item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize(("loss", "pooling"), [("listwise", "mask"), ("pointwise", "mask"), ("listwise", "span")])
def test_training_step_lowers_the_loss(bert_tokenizer, loss, pooling):
    model = tiny_model(bert_tokenizer, loss=loss, use_retrieval_score=True, slot_pooling=pooling).train()
    doc = sample_document(num_candidates=4)
    labels = [[1.0 if c == m % 4 else 0.0 for c in range(4)] for m in range(len(doc.mentions))]
    scores = [[0.5] * 4 for _ in doc.mentions]
    doc = LinkingInput(doc.text, doc.mentions, doc.candidates, candidate_scores=scores, candidate_labels=labels)
    batch = bert_tokenizer.pad_packed(bert_tokenizer.pack([doc], mode="sentence"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.config.scorer_dropout = 0.0
    losses = []
    for _ in range(15):
        out = model(**batch)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(out.loss.item())
    assert losses[-1] < losses[0] * 0.5


def test_config_round_trip_and_validation(tmp_path):
    from transformers import BertConfig

    config = BelConfig(
        encoder=BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2),
        mode="document",
        template="compact",
        nil_threshold=0.25,
    )
    config.save_pretrained(tmp_path)
    loaded = BelConfig.from_pretrained(tmp_path)
    assert loaded.encoder.hidden_size == 32 and loaded.encoder.model_type == "bert"
    assert (loaded.mode, loaded.template, loaded.nil_threshold) == ("document", "compact", 0.25)
    assert loaded.bel_version
    with pytest.raises(ValueError, match="mode"):
        BelConfig(mode="paragraph")
    with pytest.raises(ValueError, match="slot_pooling"):
        BelConfig(slot_pooling="cls")
    with pytest.raises(ValueError, match="model_type"):
        BelConfig(encoder={"hidden_size": 32})


def test_save_and_reload_in_process(bert_model, bert_tokenizer, tmp_path):
    bert_model.save_pretrained(tmp_path)
    bert_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = BelForMultiCandidateLinking.from_pretrained(tmp_path).eval()
    doc = sample_document(num_candidates=3)
    before = scores_by_pair(bert_model, bert_tokenizer, [doc], "sentence")
    after = scores_by_pair(reloaded, bert_tokenizer, [doc], "sentence")
    assert max(abs(before[k] - after[k]) for k in before) < 1e-6


def test_score_returns_one_score_per_candidate_in_every_mode(bert_model, bert_tokenizer):
    doc = sample_document(num_candidates=5)
    other = LinkingInput("Breast cancer in carriers.", [(0, 13)], [["breast cancer", "colon cancer"]])
    pair = bert_model.score(bert_tokenizer, [doc, other], mode="pair", max_tokens=300)
    reference = scores_by_pair(bert_model, bert_tokenizer, [doc, other], "pair")
    for (d, m, c), value in reference.items():
        assert pair[d][m][c] == pytest.approx(value, abs=1e-5)
    for mode in ("mention", "sentence", "document"):
        scores = bert_model.score(bert_tokenizer, [doc, other], mode=mode, max_tokens=1000)
        assert [[len(s) for s in d] for d in scores] == [[5] * 7, [2]]


def test_untrained_model_with_retrieval_scores_ranks_as_the_retriever(bert_tokenizer, tmp_path):
    model = tiny_model(bert_tokenizer, use_retrieval_score=True, seed=5)
    doc = sample_document(num_candidates=6)
    retrieval = [[0.9 - 0.1 * ((c + m) % 6) for c in range(6)] for m in range(len(doc.mentions))]
    doc = LinkingInput(doc.text, doc.mentions, doc.candidates, candidate_scores=retrieval)
    for mode in ("pair", "sentence"):
        scores = model.score(bert_tokenizer, [doc], mode=mode)
        for mention, row in enumerate(scores[0]):
            assert sorted(range(6), key=lambda c: -row[c]) == sorted(range(6), key=lambda c: -retrieval[mention][c])
    with torch.no_grad():
        model.scorer.weight.normal_(0, 0.5)  # as after training: the reload must keep it, not re-zero it
    model.save_pretrained(tmp_path)
    reloaded = BelForMultiCandidateLinking.from_pretrained(tmp_path).eval()
    assert torch.equal(reloaded.scorer.weight, model.scorer.weight)
    assert torch.equal(reloaded.retrieval_weight, model.retrieval_weight)
    assert reloaded.score(bert_tokenizer, [doc], mode="sentence") == model.score(bert_tokenizer, [doc], mode="sentence")
