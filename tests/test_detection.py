"""Learned mention detection: BIO labels, windows that lose nothing, training, and the detector inside a checkpoint."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import PretrainedConfig

from bel import load_linker
from bel.data.pubtator import read_pubtator
from bel.detection_bel import (
    CASE_TYPES,
    DICTIONARY_FILE,
    MentionDetector,
    bio_labels,
    decode_labels,
    dictionary_tags,
    encode_labels,
    has_detector,
    merge_adjacent,
    token_cases,
    token_windows,
    trim_entity,
    viterbi_labels,
    window_owners,
    word_case,
    word_spans,
)
from bel.detector_training import (
    DetectorSettings,
    detection_windows,
    kb_dictionary,
    train_detector,
    training_windows,
    with_mentions,
)
from bel.kb import Entity, KnowledgeBase
from bel.model_card import detector_section
from bel.saving import save_detector

from .helpers import FIXTURES, TEXT, TINY_DICTIONARY, make_linker, save_tiny_encoder, tiny_detector, wordpiece_tokenizer
from .remote import run_without_bel

LABELS = bio_labels(["Disease", "Chemical"])
TAGS = {"breast": "B-Disease", "cancer": "I-Disease", "fever": "B-Disease", "drug": "B-Chemical"}


class LexicalTagger(torch.nn.Module):
    """Labels each token from its id alone (no attention), so correct windowing gives the same entities for any
    window size: whatever a window sees of its neighbours cannot change a label."""

    def __init__(self, tokenizer) -> None:
        super().__init__()
        self.config = PretrainedConfig(id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
        vocab = tokenizer.get_vocab()
        table = torch.zeros(len(vocab), len(LABELS))
        table[:, 0] = 1.0
        for word, label in TAGS.items():
            table[vocab[word], LABELS.index(label)] = 2.0
        self.register_buffer("table", table)

    @property
    def device(self) -> torch.device:
        return self.table.device

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[input_ids])


@pytest.fixture(scope="module")
def tokenizer():
    return wordpiece_tokenizer()


def test_bio_round_trip_on_words():
    offsets = [(0, 6), (7, 10), (10, 13), (14, 16), (17, 22), (23, 27), (27, 30)]
    words = [0, 1, 1, 2, 3, 4, 4]  # "breast can|cer of aspir in|ine": later sub-tokens carry no label
    entities = [(0, 13, "Disease"), (17, 30, "Chemical")]
    label2id = {label: i for i, label in enumerate(LABELS)}
    ids = encode_labels(offsets, words, entities, label2id)
    assert [LABELS[i] if i >= 0 else None for i in ids] == [
        "B-Disease",
        "I-Disease",
        None,
        "O",
        "B-Chemical",
        "I-Chemical",
        None,
    ]
    firsts, spans = word_spans(offsets, words)
    assert firsts == [0, 1, 3, 4, 5] and spans == [(0, 6), (7, 13), (14, 16), (17, 22), (23, 30)]
    assert decode_labels([LABELS[ids[t]] for t in firsts], spans) == entities


@given(st.integers(0, 300), st.integers(1, 40), st.data())
def test_window_owners_partition_the_tokens(length, size, data):
    overlap = data.draw(st.integers(0, size - 1))
    windows = token_windows(length, size, min(overlap, size // 2))
    owned = window_owners(windows)
    assert all(end - start <= size for start, end in windows)
    covered = [t for low, high in owned for t in range(low, high)]
    assert covered == list(range(length))
    assert all(start <= low <= high <= end for (start, end), (low, high) in zip(windows, owned, strict=True))


WORDS = ["breast", "cancer", "fever", "drug", "the", "risk", "naïve", "Ünïcödé", "β-carriers", "kidney", "(", "."]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=0, max_size=120), st.lists(st.integers(0, 119), max_size=3))
def test_windowing_loses_no_entity_and_keeps_offsets(tokenizer, words, cuts):
    text = " ".join(words)
    bounds = sorted({0, len(text), *(len(" ".join(words[:c])) for c in cuts if c < len(words))})
    passages = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a] or [(0, len(text))]
    plain = {"decoding": "argmax", "merge": False}  # word by word, so windows alone decide the labels
    reference = MentionDetector(LexicalTagger(tokenizer), tokenizer, max_length=512, **plain).detect(
        [(text, passages)]
    )[0]
    for max_length, overlap in ((5, 1), (8, 3), (16, 7)):
        for context in ("passage", "document"):
            found = MentionDetector(
                LexicalTagger(tokenizer), tokenizer, max_length=max_length, overlap=overlap, context=context, **plain
            )
            assert found.detect([(text, passages)])[0] == reference
    expected = sum(word in ("breast", "fever", "drug") for word in words)
    # "cancer" is I-Disease: it continues an entity after any Disease word and starts one elsewhere
    continues = ("breast", "cancer", "fever")
    expected += sum(w == "cancer" and (i == 0 or words[i - 1] not in continues) for i, w in enumerate(words))
    assert len(reference) >= expected - len(passages) + 1 or not words  # a passage cut may split "breast | cancer"
    for start, end, kind in reference:
        assert any(a <= start < end <= b for a, b in passages)  # never across a passage boundary
        assert set(text[start:end].split()) <= {"breast", "cancer", "fever", "drug"}
        assert kind == ("Chemical" if text[start:end] == "drug" else "Disease")


def test_long_document_is_windowed_not_truncated(tokenizer):
    text = ("Naïve patients had fever . " * 400) + "The drug was given ."
    detector = MentionDetector(LexicalTagger(tokenizer), tokenizer, max_length=64, overlap=16)
    found = detector.detect([(text, [(0, len(text))])])[0]
    assert len(found) == 401 and found[-1] == (text.rindex("drug"), text.rindex("drug") + 4, "Chemical")
    assert all(text[s:e] == "fever" for s, e, _ in found[:-1])


def test_document_context_reads_the_passages_as_one_sequence(tokenizer, tmp_path):
    text = "Breast cancer. Patients with breast cancer had fever."
    passages = [(0, 14), (15, len(text))]
    model = tiny_detector(tokenizer).model
    options = {"max_length": 128, "case_types": True, "dictionary": TINY_DICTIONARY}
    detector, document = (MentionDetector(model, tokenizer, context=c, **options) for c in ("passage", "document"))
    assert detector.passage_groups(passages) == [[passages[0]], [passages[1]]]
    assert document.passage_groups(passages) == [passages] and document.passage_groups([]) == []
    sequence = document.text_windows(text, passages)
    (first, first_end), (second, _) = sequence.segments
    assert second == first_end + 1 and sequence.ids[first_end] == tokenizer.sep_token_id
    assert [text[a:b] for a, b in sequence.offsets[first:first_end]] == ["Breast", "cancer", "."]
    assert len(set(sequence.words)) == len(set(sequence.words[:first_end])) + 1 + len(set(sequence.words[second:]))
    alone = detector.word_log_probs([(text, passages)])[0]
    together = document.word_log_probs([(text, passages)])[0]
    assert [spans for spans, _ in alone] == [spans for spans, _ in together]  # the same words, passage by passage
    assert not torch.allclose(alone[0][1], together[0][1])  # the title now reads its abstract
    windows = detection_windows(document, read_pubtator(FIXTURES / "bel_train_corpus.txt")[:2], None)
    assert len(windows) == 2  # one sequence a document
    for window in windows:
        separators = [i for i, token in enumerate(window["input_ids"]) if token == tokenizer.sep_token_id]
        assert len(separators) == 2 and window["labels"][separators[0]] == -100  # between title and abstract
    assert MentionDetector.from_pretrained(document.save_pretrained(tmp_path / "detector")).context == "document"
    assert "a document read as one sequence" in detector_section(document)
    with pytest.raises(ValueError, match="context must be one of"):
        MentionDetector(model, tokenizer, context="sentence")


def test_detector_training_lowers_the_loss(tmp_path):
    encoder = save_tiny_encoder(tmp_path / "encoder")
    docs = read_pubtator(FIXTURES / "bel_train_corpus.txt")
    settings = DetectorSettings(
        encoder=str(encoder),
        output_dir=str(tmp_path / "run"),
        epochs=4,
        learning_rate=3e-3,
        batch_size=4,
        max_length=32,
        overlap=8,
        case_types=True,
    )
    directory = train_detector(settings, docs, docs[:3])
    summary = json.loads((tmp_path / "run" / "detector_summary.json").read_text())
    losses = [epoch["train_loss"] for epoch in summary["history"]]
    assert losses[-1] < losses[0] * 0.8
    assert {"dev/f1", "dev/precision", "dev/recall"} <= set(summary["history"][0])
    detector = MentionDetector.from_pretrained(directory)
    assert detector.types == summary["types"] and detector.max_length == 32
    provenance = detector.model.config.bel_training
    assert provenance["selection"] == "dev strict F1" and provenance["dev_f1"] == summary["best_dev_f1"]
    assert summary["history"][provenance["epoch"]]["dev/f1"] == summary["best_dev_f1"]
    assert detector.case_types and detector.model.config.type_vocab_size == CASE_TYPES
    windows = detection_windows(detector, docs[:2], None)
    assert all(len(w["input_ids"]) == len(w["labels"]) <= 32 for w in windows)


def test_train_on_dev_adds_every_dev_document_and_keeps_the_last_epoch(tmp_path, caplog):
    from bel.training import TrainConfig, _detector_stage

    encoder = save_tiny_encoder(tmp_path / "encoder")
    train, dev = FIXTURES / "bel_train_corpus.txt", FIXTURES / "bel_train_dev.txt"
    config = TrainConfig(
        stage="detector",
        train_file=str(train),
        dev_file=str(dev),
        encoder=str(encoder),
        output_dir=str(tmp_path / "run"),
        detector_epochs=2,
        detector_train_on_dev=True,
    )
    config.validate()
    with caplog.at_level("INFO", logger="bel.detector_training"):
        directory = _detector_stage(config, None)
    summary = json.loads((tmp_path / "run" / "detector_summary.json").read_text())
    assert summary["best_dev_f1"] is None and len(summary["history"]) == 2
    assert not any(key.startswith("dev/") for epoch in summary["history"] for key in epoch)
    detector = MentionDetector.from_pretrained(directory)
    provenance = detector.model.config.bel_training
    assert provenance["train_on_dev"] and provenance["selection"] == "last epoch" and provenance["epoch"] == 1
    assert not detector.dictionary and not provenance["dictionary"]  # no KB in this run, so no dictionary
    assert "(train + dev)" in detector_section(detector)
    both = [*read_pubtator(train), *read_pubtator(dev)]
    expected = len(detection_windows(detector, both, None))
    assert expected > len(detection_windows(detector, read_pubtator(train), None))
    assert f"detector: {expected} training windows" in caplog.text


def test_train_on_dev_needs_dev_documents():
    from bel.training import TrainConfig

    config = TrainConfig(stage="detector", train_file="train.txt", detector_train_on_dev=True)
    with pytest.raises(ValueError, match="--detector-train-on-dev needs dev documents"):
        config.validate()


@pytest.fixture(scope="module")
def detector_linker(bert_tokenizer, tmp_path_factory):
    directory = make_linker(bert_tokenizer, tmp_path_factory.mktemp("with_detector") / "linker")
    save_detector(directory, tiny_detector(wordpiece_tokenizer()))
    return directory


def test_model_card_describes_the_attached_detector_once(detector_linker, tmp_path):
    import shutil

    linker = tmp_path / "linker"
    shutil.copytree(detector_linker, linker)
    card = (linker / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---") and card.count("## Mention detector") == 1 and "BIO labels for Disease" in card
    assert "`detector/dictionary.json`: 3 Disease names" in card
    assert "Training: not recorded" in card  # the fixture's detector was not trained by `bel train`
    model = tiny_detector(wordpiece_tokenizer()).model
    model.config.id2label = {0: "O", 1: "B-Chemical", 2: "I-Chemical"}
    model.config.label2id = {label: i for i, label in model.config.id2label.items()}
    save_detector(linker, MentionDetector(model, wordpiece_tokenizer()))  # replaces the detector, and its section
    again = (linker / "README.md").read_text(encoding="utf-8")
    assert again.count("## Mention detector") == 1 and "BIO labels for Chemical" in again
    assert "dictionary.json" not in again and not (linker / "detector" / DICTIONARY_FILE).exists()
    assert again.split("<!-- bel:detector -->")[0].rstrip() == card.split("<!-- bel:detector -->")[0].rstrip()


def test_checkpoint_with_detector_types_its_mentions(detector_linker):
    assert has_detector(detector_linker)
    linker = load_linker(detector_linker)
    out = linker(TEXT)
    assert out and all(m["type"] == "Disease" and TEXT[m["start"] : m["end"]] == m["text"] for m in out)
    dictionary = linker(TEXT, detector="dictionary")
    assert all(m["type"] is None for m in dictionary) and dictionary != out
    given = linker({"text": TEXT, "mentions": [{"start": 0, "end": 9, "type": "Disease"}, {"start": 37, "end": 42}]})
    assert [m["type"] for m in given] == ["Disease", None]


def test_checkpoint_without_detector_uses_the_dictionary(bert_tokenizer, tmp_path):
    linker = load_linker(make_linker(bert_tokenizer, tmp_path / "plain"))
    assert linker.detector is None and [m["text"] for m in linker(TEXT)][:2] == ["Varicella", "viral infection"]
    with pytest.raises(ValueError, match="no detector"):
        linker(TEXT, detector="model")


REMOTE = """
import json
from transformers import pipeline
linker = pipeline("entity-linking", model={directory!r}, trust_remote_code=True)
print(json.dumps({{"raw": linker({text!r}), "module": type(linker).__module__}}))
"""


@pytest.mark.slow
def test_detector_runs_where_bel_is_not_installed(detector_linker, tmp_path, hf_home):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = REMOTE.format(directory=str(detector_linker), text=TEXT)
    result = run_without_bel(code, cwd=elsewhere, env={"HF_HOME": str(hf_home)})
    assert result["module"].startswith("transformers_modules")
    assert result["raw"] == load_linker(detector_linker)(TEXT)


def valid_bio(tags: list[str]) -> bool:
    return all(
        not tag.startswith("I-") or (i > 0 and tags[i - 1] != "O" and tags[i - 1][2:] == tag[2:])
        for i, tag in enumerate(tags)
    )


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_viterbi_finds_the_best_valid_bio_sequence(length, seed):
    import itertools

    generator = torch.Generator().manual_seed(seed)
    log_probs = (3 * torch.randn(length, len(LABELS), generator=generator)).log_softmax(-1)
    tags = viterbi_labels(log_probs, LABELS)
    assert valid_bio(tags)
    best = max(
        (path for path in itertools.product(range(len(LABELS)), repeat=length) if valid_bio([LABELS[i] for i in path])),
        key=lambda path: sum(float(log_probs[t, i]) for t, i in enumerate(path)),
    )
    assert tags == [LABELS[i] for i in best]


EDGE_WORDS = ["and", "or", "the", "of", "(", ")", ",", ".", "cancer", "breast", "Cowden", "type", "1", "-", "β"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(EDGE_WORDS), min_size=1, max_size=8))
def test_trimmed_entities_have_no_edge_no_mention_has(words):
    text = "x " + " ".join(words) + " y"
    start, end = trim_entity(text, 2, len(text) - 2)
    assert 2 <= start <= end <= len(text) - 2
    if end > start:
        piece = text[start:end]
        assert piece == piece.strip() and piece.split()[0] not in {"and", "or", "the", "of", ",", ".", ")"}
        assert piece.split()[-1] not in {"and", "or", "the", "of", ",", ".", "("}
        assert trim_entity(text, start, end) == (start, end)
        # a bracket is kept only with its partner inside
        assert ("(" in piece) == (")" in piece) or piece.count("(") != piece.count(")")


def test_trim_keeps_real_mentions_whole():
    text = "ectopia pupillae (displaced pupils) and type 1 diabetes (T1D)"
    assert trim_entity(text, 0, 18) == (0, 16)
    assert trim_entity(text, 0, 35) == (0, 35)
    assert trim_entity(text, 36, 55) == (40, 55)


def test_merge_joins_only_touching_entities_of_one_type():
    text = "Hemorrhagic cystitis, fever and drug rash"
    entities = [(0, 11, "Disease"), (12, 20, "Disease"), (22, 27, "Disease"), (32, 36, "Chemical"), (37, 41, "Disease")]
    assert merge_adjacent(text, entities) == [
        (0, 20, "Disease"),
        (22, 27, "Disease"),
        (32, 36, "Chemical"),
        (37, 41, "Disease"),
    ]


def test_letter_case_reaches_the_model_as_token_types(tokenizer):
    assert [word_case(w) for w in ("aids", "Aids", "AIDS", "p53", "SCA1", "ß")] == [0, 1, 2, 0, 2, 0]
    detector = tiny_detector(tokenizer)
    lower, upper = (detector.passage_windows(t, (0, len(t))) for t in ("cd patients", "CD patients"))
    assert lower.ids == upper.ids and lower.token_types != upper.token_types
    assert token_cases("CD patients", upper.offsets, upper.words)[0] == 2
    scores = [detector.word_log_probs([(t, [(0, len(t))])])[0][0][1] for t in ("cd patients", "CD patients")]
    assert not torch.allclose(scores[0], scores[1])


def test_dictionary_matches_reach_the_model_as_token_types(tokenizer):
    offsets = [(0, 6), (7, 13), (14, 17), (18, 21)]
    # the longer match wins; the shorter one that would cut into it is dropped whole
    assert dictionary_tags(offsets, [(7, 17, 1), (0, 13, 0), (18, 21, 0)]) == [1, 2, 0, 1]
    assert dictionary_tags(offsets, [(7, 17, 1), (0, 6, 0)]) == [1, 3, 4, 0]
    detector = tiny_detector(tokenizer)
    text = "Fever and breast cancer, not breast pain."
    windows = detector.passage_windows(text, (0, len(text)))
    tags = [t % 3 for t in windows.token_types]  # token type = letter case * 3 + dictionary tag
    tagged = [text[a:b] for (a, b), tag in zip(windows.offsets, tags, strict=True) if tag]
    assert tagged == ["Fever", "breast", "cancer"] and [t for t in tags if t] == [1, 1, 2]
    assert windows.token_types[0] == 1 * 3 + 1  # "Fever": capitalised and a dictionary match's first token
    plain = MentionDetector(detector.model, tokenizer, max_length=16, overlap=4, case_types=True, dictionary={})
    assert not torch.allclose(
        detector.word_log_probs([(text, [(0, len(text))])])[0][0][1],
        plain.word_log_probs([(text, [(0, len(text))])])[0][0][1],
    )


def test_kb_dictionary_splits_names_by_type():
    kb = KnowledgeBase(
        [
            Entity(id="MESH:D1", name="Fever", synonyms=("pyrexia",), categories=("C23",)),
            Entity(id="MESH:D2", name="Aspirin", categories=("D02",)),
            Entity(id="MESH:D3", name="Anxiety", categories=("F01",)),
            Entity(id="MESH:D4", name="Psychoses", categories=("F03",)),
        ]
    )
    assert kb_dictionary(kb, ["Chemical", "Disease"]) == {
        "Chemical": ["Aspirin"],
        "Disease": ["Fever", "Psychoses", "pyrexia"],
    }
    plain = KnowledgeBase([Entity(id="D:1", name="Fever"), Entity(id="D:2", name="Rash")])
    assert kb_dictionary(plain, ["Disease"]) == {"Disease": ["Fever", "Rash"]}
    assert kb_dictionary(plain, ["Chemical", "Disease"]) == {"Entity": ["Fever", "Rash"]}


def test_detector_trained_with_a_dictionary_saves_and_reloads_it(tmp_path):
    encoder = save_tiny_encoder(tmp_path / "encoder")
    docs = read_pubtator(FIXTURES / "bel_train_corpus.txt")
    kb = KnowledgeBase.load(FIXTURES / "bel_train_kb.txt")
    settings = DetectorSettings(
        encoder=str(encoder),
        output_dir=str(tmp_path / "run"),
        epochs=1,
        batch_size=4,
        max_length=32,
        overlap=8,
        dictionary=True,
    )
    with pytest.raises(ValueError, match="needs the KB"):
        train_detector(settings, docs[:2])
    directory = train_detector(settings, docs[:4], kb=kb)
    detector = MentionDetector.from_pretrained(directory)
    names = {name for _, name, _ in kb.names()}
    assert set(detector.dictionary) == {"Disease"} and set(detector.dictionary["Disease"]) == names
    assert detector.model.config.type_vocab_size == 3 and detector.model.config.bel_training["dictionary"]
    windows = detection_windows(detector, docs[:1], None)
    doc = docs[0]
    matched = {doc.text[m.start : m.end].lower() for m in doc.mentions} & {n.lower() for n in names}
    assert matched and any(1 in w["token_type_ids"] for w in windows)
    (directory / DICTIONARY_FILE).unlink()
    with pytest.raises(ValueError, match="no dictionary.json"):
        MentionDetector.from_pretrained(directory)


def test_detector_dictionary_is_on_by_default_when_the_run_has_a_kb(tmp_path):
    from bel.training import TrainConfig, _detector_stage

    encoder = save_tiny_encoder(tmp_path / "encoder")
    kb_file = FIXTURES / "bel_train_kb.txt"
    config = TrainConfig(
        stage="detector",
        train_file=str(FIXTURES / "bel_train_corpus.txt"),
        kb_file=str(kb_file),
        encoder=str(encoder),
        output_dir=str(tmp_path / "run"),
        detector_epochs=1,
        max_train_documents=4,
    )
    config.validate()
    assert config.detector_dictionary is None and config.uses_detector_dictionary
    detector = MentionDetector.from_pretrained(_detector_stage(config, None))
    names = {name for _, name, _ in KnowledgeBase.load(kb_file).names()}
    assert set(detector.dictionary["Disease"]) == names and detector.model.config.bel_training["dictionary"]
    assert not TrainConfig(stage="detector", train_file="t.txt", detector_dictionary=False).uses_detector_dictionary
    with pytest.raises(ValueError, match="--detector-dictionary needs the KB"):
        TrainConfig(stage="detector", train_file="t.txt", detector_dictionary=True).validate()


def test_dictionary_mentions_tag_each_half_with_the_other_halfs_mentions(tokenizer):
    from .helpers import TINY_DICTIONARY

    docs = read_pubtator(FIXTURES / "bel_train_corpus.txt")[:6]
    detector = tiny_detector(tokenizer)
    settings = DetectorSettings(encoder="unused", output_dir="unused", dictionary=True, dictionary_mentions=True)
    windows = training_windows(settings, detector, docs)
    everything = with_mentions(TINY_DICTIONARY, docs, None)
    assert detector.dictionary == everything  # what the detector keeps (and saves) after training
    assert {docs[0].text[m.start : m.end] for m in docs[0].mentions} <= set(everything["Disease"])
    halves = docs[0::2], docs[1::2]
    expected = []
    for half, other in zip(halves, reversed(halves), strict=True):
        detector.use_dictionary(with_mentions(TINY_DICTIONARY, other, None))
        expected.extend(detection_windows(detector, half, None))
    assert windows == expected
    detector.use_dictionary(everything)  # a leaky dictionary: each document's own mentions in it
    leaky = [w for half in halves for w in detection_windows(detector, half, None)]
    tagged = [sum(t % 3 > 0 for t in w["token_type_ids"]) for w in windows]
    assert sum(t % 3 > 0 for w in leaky for t in w["token_type_ids"]) > sum(tagged)
    with pytest.raises(ValueError, match="types"):
        detector.use_dictionary({"Chemical": ["aspirin"]})
