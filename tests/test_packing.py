"""Packing: every (mention, candidate) pair gets exactly one slot, in every mode, however long the input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bel import PACKING_MODES, LinkingInput
from bel.tokenization_bel import MENTION_END, MENTION_START

from .helpers import WORDS

TEXT = (
    "Familial adenomatous polyposis is a hereditary disease. Carriers of the gene mutation have a high risk of colon "
    "cancer and of tumors in the liver. Breast cancer and ovarian cancer were found in patients with the mutation. "
    "Renal failure was not seen."
)
MENTION_TEXTS = [
    "Familial adenomatous polyposis",
    "hereditary disease",
    "colon cancer",
    "tumors in the liver",
    "Breast cancer",
    "ovarian cancer",
    "Renal failure",
]
CANDIDATES = [
    "adenomatous polyposis",
    "colon cancer",
    "breast cancer",
    "ovarian cancer",
    "renal failure",
    "liver tumor",
    "hereditary syndrome",
    "kidney disease",
]


def sample_document(num_candidates: int = 8) -> LinkingInput:
    spans = []
    for mention in MENTION_TEXTS:
        start = TEXT.index(mention)
        spans.append((start, start + len(mention)))
    candidates = [
        [CANDIDATES[(m + c) % len(CANDIDATES)] + ("" if c < 8 else f" {c}") for c in range(num_candidates)]
        for m in range(len(spans))
    ]
    return LinkingInput(TEXT, spans, candidates)


def slot_pairs(sequences) -> list[tuple[int, int, int]]:
    return sorted(
        (d, m, c)
        for s in sequences
        for d, m, c in zip(s["slot_document"], s["slot_mention"], s["slot_candidate"], strict=True)
    )


def expected_pairs(documents) -> list[tuple[int, int, int]]:
    return sorted(
        (d, m, c)
        for d, doc in enumerate(documents)
        for m, cands in enumerate(doc.candidates)
        for c in range(len(cands))
    )


@pytest.mark.parametrize("template", ["paper", "compact"])
def test_every_mode_scores_the_same_pairs_once(bert_tokenizer, template):
    doc = sample_document(num_candidates=8)
    counts = {}
    for mode in PACKING_MODES:
        sequences = bert_tokenizer.pack([doc], mode=mode, template=template)
        pairs = slot_pairs(sequences)
        assert pairs == expected_pairs([doc]), mode
        assert len(set(pairs)) == len(pairs)
        for s in sequences:
            assert len(s["input_ids"]) <= 512
            assert all(s["input_ids"][p] == bert_tokenizer.mask_token_id for p in s["slot_positions"])
            assert_slot_spans_hold_their_candidate_names(bert_tokenizer, doc, s)
        counts[mode] = len(sequences)
    assert counts["pair"] == 7 * 8
    assert counts["mention"] == 7
    assert counts["sentence"] == 4
    assert counts["document"] == 1
    assert counts["document"] < counts["sentence"] < counts["mention"] < counts["pair"]


def assert_slot_spans_hold_their_candidate_names(tokenizer, doc, sequence) -> None:
    """Each slot's span is its [MASK] then exactly its candidate's name, ended by the next [MASK] or [SEP]."""
    ids = sequence["input_ids"]
    for p, end, m, c in zip(
        sequence["slot_positions"],
        sequence["slot_ends"],
        sequence["slot_mention"],
        sequence["slot_candidate"],
        strict=True,
    ):
        name_ids = tokenizer(doc.candidates[m][c], add_special_tokens=False)["input_ids"]
        assert ids[p + 1 : end] == name_ids
        assert ids[end] in (tokenizer.mask_token_id, tokenizer.sep_token_id)


@pytest.mark.parametrize("mode", PACKING_MODES)
@pytest.mark.parametrize("max_length", [32, 48, 96])
def test_forced_splitting_loses_no_pair(bert_tokenizer, mode, max_length):
    doc = sample_document(num_candidates=16)
    long_names = LinkingInput(
        doc.text, doc.mentions, [[n + " protein deficiency syndrome type" * 3 for n in c] for c in doc.candidates]
    )
    for document in (doc, long_names):
        sequences = bert_tokenizer.pack([document], mode=mode, max_length=max_length, template="paper")
        assert slot_pairs(sequences) == expected_pairs([document])
        assert all(len(s["input_ids"]) <= max_length for s in sequences)
    if mode == "document":
        assert len(bert_tokenizer.pack([doc], mode=mode, max_length=max_length)) > 1


def test_long_document_is_split_not_truncated(bert_tokenizer):
    sentence = "Breast cancer was found in patients with the gene mutation. "
    text = sentence * 400
    spans = [(i * len(sentence), i * len(sentence) + len("Breast cancer")) for i in range(400)]
    doc = LinkingInput(text, spans, [["breast cancer", "ovarian cancer", "colon cancer"]] * 400)
    for mode in ("sentence", "document"):
        sequences = bert_tokenizer.pack([doc], mode=mode, max_length=128)
        assert slot_pairs(sequences) == expected_pairs([doc])
        assert all(len(s["input_ids"]) <= 128 for s in sequences)


def test_markers_surround_each_mention_in_context(bert_tokenizer):
    doc = sample_document(num_candidates=2)
    start_id, end_id = bert_tokenizer.convert_tokens_to_ids([MENTION_START, MENTION_END])
    for sequence in bert_tokenizer.pack([doc], mode="document"):
        ids = sequence["input_ids"]
        assert ids.count(start_id) == ids.count(end_id) == len(set(sequence["slot_mention"]))
        inside = []
        for position, token in enumerate(ids):
            if token == start_id:
                inside.append(ids[position + 1 : ids.index(end_id, position)])
        expected = [
            bert_tokenizer.encode(MENTION_TEXTS[m], add_special_tokens=False)
            for m in sorted(set(sequence["slot_mention"]))
        ]
        assert inside == expected


def test_bad_spans_raise_naming_document_and_mention(bert_tokenizer):
    with pytest.raises(ValueError, match="document 0, mention 1"):
        bert_tokenizer.pack([LinkingInput("short text", [(0, 5), (6, 60)], [["a"], ["b"]])])
    with pytest.raises(ValueError, match="mention 0"):
        bert_tokenizer.pack([LinkingInput("short text", [(5, 2)], [["a"]])])
    with pytest.raises(ValueError, match="candidate lists"):
        bert_tokenizer.pack([LinkingInput("short text", [(0, 5)], [])])
    with pytest.raises(ValueError, match="mode"):
        bert_tokenizer.pack([], mode="paragraph")


def test_roberta_bpe_tokenizer_packs_and_scores(roberta_tokenizer):
    from .helpers import tiny_model

    doc = sample_document(num_candidates=4)
    model = tiny_model(roberta_tokenizer, kind="roberta")
    for mode in PACKING_MODES:
        sequences = roberta_tokenizer.pack([doc], mode=mode)
        assert slot_pairs(sequences) == expected_pairs([doc])
        batch = roberta_tokenizer.pad_packed(sequences)
        assert batch["input_ids"][0, 0].item() == roberta_tokenizer.cls_token_id
        with torch.no_grad():
            logits = model(**batch).logits
        assert torch.isfinite(logits[batch["slot_mask"]]).all()


word = st.sampled_from(WORDS + ["BRCA1", "p53", "Crohn's", "non-small", "(", ")", "."])


@st.composite
def linking_inputs(draw):
    words = draw(st.lists(word, min_size=1, max_size=60))
    text = ""
    bounds = []
    for w in words:
        if text:
            text += draw(st.sampled_from([" ", "  ", "\n", ". ", ", "]))
        bounds.append((len(text), len(text) + len(w)))
        text += w
    count = draw(st.integers(0, min(8, len(bounds))))
    mentions = []
    for _ in range(count):
        first = draw(st.integers(0, len(bounds) - 1))
        last = draw(st.integers(first, min(first + 3, len(bounds) - 1)))
        mentions.append((bounds[first][0], bounds[last][1]))
    candidates = [draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=6)) for _ in mentions]
    return LinkingInput(text, mentions, candidates)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    documents=st.lists(linking_inputs(), min_size=1, max_size=3),
    mode=st.sampled_from(PACKING_MODES),
    max_length=st.sampled_from([32, 64, 512]),
    template=st.sampled_from(["paper", "compact"]),
)
def test_packing_property(bert_tokenizer, documents, mode, max_length, template):
    spans_before = [list(d.mentions) for d in documents]
    sequences = bert_tokenizer.pack(documents, mode=mode, max_length=max_length, template=template)
    assert slot_pairs(sequences) == expected_pairs(documents)
    for s in sequences:
        assert len(s["input_ids"]) <= max_length
        assert len(s["token_type_ids"]) == len(s["input_ids"])
        assert all(s["input_ids"][p] == bert_tokenizer.mask_token_id for p in s["slot_positions"])
        assert len(set(s["slot_document"])) == 1
    assert [list(d.mentions) for d in documents] == spans_before
    for _d, doc in enumerate(documents):
        for start, end in doc.mentions:
            assert 0 <= start <= end <= len(doc.text)
            assert doc.text[start:end].strip() == doc.text[start:end]
