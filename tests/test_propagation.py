"""A detected name tagged wherever its document repeats it (`bel.propagation_bel`)."""

from __future__ import annotations

import pytest
import torch

from bel.detection_bel import MentionDetector
from bel.propagation_bel import detected_names, name_key, propagate_names


def test_name_key_keeps_case_only_where_it_tells_names_apart():
    assert name_key("Wilms  Tumour") == name_key("wilms tumour")
    assert name_key("DM") != name_key("dm")
    assert name_key("Fever") == "fever"


def test_every_other_occurrence_is_added_with_the_name_type():
    text = "Cystic fibrosis is common. In cystic fibrosis patients, CYSTIC FIBROSIS genes ..."
    found = propagate_names(text, [(0, 15, "Disease")], [(0, len(text))], min_share=0.5)
    assert found == [(0, 15, "Disease"), (30, 45, "Disease")]  # upper-case variant: case matters there


def test_occurrences_overlapping_an_entity_or_inside_a_word_are_left_alone():
    text = "Ataxia. Ataxia-telangiectasia and spinocerebellar ataxia; ataxias."
    found = propagate_names(text, [(0, 6, "Disease"), (34, 56, "Disease")], [(0, len(text))])
    assert found == [(0, 6, "Disease"), (34, 56, "Disease")]


def test_short_form_of_a_detected_long_form_is_propagated_case_sensitively():
    text = "Myotonic dystrophy (DM) is inherited. DM patients, but not dm or DMPK carriers."
    found = propagate_names(text, [(0, 18, "Disease")], [(0, len(text))], min_share=0)
    assert found == [(0, 18, "Disease"), (20, 22, "Disease"), (38, 40, "Disease")]
    # the long form's one yes against the short form's two noes: a majority keeps the short form out
    assert propagate_names(text, [(0, 18, "Disease")], [(0, len(text))]) == [(0, 18, "Disease")]
    alone = propagate_names(text, [(0, 18, "Disease")], [(0, len(text))], min_share=0, abbreviations=False)
    assert alone == [(0, 18, "Disease")]


def test_two_thirds_of_the_occurrences_decide_for_all_of_them():
    text = "DCC loss. DCC and DCC again; colon cancer, colon cancer, colon cancer."
    entities = [(0, 3, "Disease"), (29, 41, "Disease"), (43, 55, "Disease")]
    found = propagate_names(text, entities, [(0, len(text))])
    assert found == [(29, 41, "Disease"), (43, 55, "Disease"), (57, 69, "Disease")]
    assert propagate_names(text, entities, [(0, len(text))], min_share=0.7) == []  # 2 of 3 and 1 of 3: both out
    assert propagate_names("Fever, fever.", [(0, 5, "Disease")], [(0, 13)]) == []  # 1 of 2: out by default


def test_docstring_examples():
    import doctest

    import bel.propagation_bel

    assert doctest.testmod(bel.propagation_bel).failed == 0


def test_matches_stay_inside_the_given_passages():
    text = "Fever of unknown origin. Fever again."
    assert propagate_names(text, [(0, 5, "Disease")], [(0, 24)]) == [(0, 5, "Disease")]
    both = propagate_names(text, [(0, 5, "Disease")], [(0, 24), (25, 37)], min_share=0.5)
    assert both == [(0, 5, "Disease"), (25, 30, "Disease")]


def test_short_names_and_the_majority_type():
    text = "TB and tb; TB again."
    assert propagate_names(text, [(0, 2, "Disease")], [(0, len(text))], min_length=3) == [(0, 2, "Disease")]
    names = detected_names("aspirin aspirin aspirin", [(0, 7, "Chemical"), (8, 15, "Chemical"), (16, 23, "Disease")])
    assert names == {"aspirin": ("Chemical", None)}


def test_non_ascii_names_and_offsets():
    text = "Sjögren syndrome: the Sjögren  syndrome of the eye."
    found = propagate_names(text, [(0, 16, "Disease")], [(0, len(text))], min_share=0.5)
    assert [text[a:b] for a, b, _ in found] == ["Sjögren syndrome", "Sjögren  syndrome"]


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "fever", "and", "cough", ".", "again"]
    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(words), encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    labels = ["O", "B-Disease", "I-Disease"]
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        id2label=dict(enumerate(labels)),
        label2id={v: k for k, v in enumerate(labels)},
    )
    torch.manual_seed(0)
    return MentionDetector(BertForTokenClassification(config), tokenizer)


def test_decode_adds_repeats_only_when_propagating(tiny_detector):
    text = "fever and fever. fever again."
    words = [(0, 5), (6, 9), (10, 15), (15, 16), (17, 22), (23, 28), (28, 29)]
    log_probs = torch.full((len(words), 3), -9.0)
    log_probs[:, 0] = 0.0
    log_probs[[0, 2]] = torch.tensor([-9.0, 0.0, -9.0])  # two of the three "fever"s are tagged
    tiny_detector.propagate = False
    assert tiny_detector.decode(text, [(words, log_probs)]) == [(0, 5, "Disease"), (10, 15, "Disease")]
    tiny_detector.propagate = True
    assert tiny_detector.decode(text, [(words, log_probs)]) == [
        (0, 5, "Disease"),
        (10, 15, "Disease"),
        (17, 22, "Disease"),
    ]
    log_probs[2] = torch.tensor([0.0, -9.0, -9.0])  # one of three: outvoted
    assert tiny_detector.decode(text, [(words, log_probs)]) == []


def test_propagation_setting_is_saved_with_the_detector(tiny_detector, tmp_path):
    tiny_detector.propagate = False
    tiny_detector.save_pretrained(tmp_path)
    assert MentionDetector.from_pretrained(tmp_path).propagate is False
    assert MentionDetector.from_pretrained(tmp_path, propagate=True).propagate is True
