"""A detector started from another corpus's detector (`bel train --detector-init-from`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bel.detection_bel import CASE_TYPES, MentionDetector
from bel.detector_training import DetectorSettings, detector_source, new_detector, token_type_meanings
from bel.model_card import detector_section

from .helpers import FIXTURES, save_tiny_encoder

BOTH_TYPES = {"Chemical": ["aspirin", "cisplatin"], "Disease": ["fever", "renal failure"]}


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("encoder") / "encoder")


@pytest.fixture(scope="module")
def source_dir(encoder, tmp_path_factory) -> Path:
    """A saved Chemical + Disease detector with a dictionary of both types, its weights moved off the encoder's."""
    settings = DetectorSettings(encoder=str(encoder), output_dir="unused", max_length=32, overlap=8)
    source = new_detector(settings, ["Chemical", "Disease"], BOTH_TYPES)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in source.model.parameters():
            parameter.add_(torch.randn_like(parameter))
    return source.save_pretrained(tmp_path_factory.mktemp("source") / "detector")


def test_start_from_carries_the_encoder_the_shared_labels_and_token_types(encoder, source_dir):
    source = MentionDetector.from_pretrained(source_dir)
    settings = DetectorSettings(
        encoder=str(encoder), output_dir="unused", case_types=True, init_from=str(source_dir.parent)
    )
    detector = new_detector(settings, ["Disease"], {"Disease": ["fever"]})

    source_state = source.model.base_model.state_dict()
    for name, value in detector.model.base_model.state_dict().items():
        if "token_type_embeddings" not in name:
            assert torch.equal(value, source_state[name]), name
    rows = [source.label2id[label] for label in detector.labels]
    assert detector.labels == ["O", "B-Disease", "I-Disease"] and rows == [0, 3, 4]
    assert torch.equal(detector.model.classifier.weight, source.model.classifier.weight[rows])
    assert torch.equal(detector.model.classifier.bias, source.model.classifier.bias[rows])

    # the source reads no letter case: every case class takes the source's row of the same dictionary tag
    assert token_type_meanings(source)[3:] == [(0, "B", "Disease"), (0, "I", "Disease")]
    types = detector.model.base_model.embeddings.token_type_embeddings.weight
    source_types = source.model.base_model.embeddings.token_type_embeddings.weight
    assert types.shape[0] == CASE_TYPES * 3
    for case in range(CASE_TYPES):
        assert torch.equal(types[case * 3 : case * 3 + 3], source_types[[0, 3, 4]])


def test_a_label_the_source_lacks_keeps_its_fresh_row(encoder, source_dir):
    settings = DetectorSettings(encoder=str(encoder), output_dir="unused", init_from=str(source_dir))
    torch.manual_seed(0)
    fresh = new_detector(DetectorSettings(encoder=str(encoder), output_dir="unused"), ["Gene"])
    torch.manual_seed(0)
    started = new_detector(settings, ["Gene"])
    source = MentionDetector.from_pretrained(source_dir)
    assert torch.equal(started.model.classifier.weight[0], source.model.classifier.weight[0])  # O
    # B-Gene and I-Gene: as initialised from the same seed without a source
    assert torch.equal(started.model.classifier.weight[1:], fresh.model.classifier.weight[1:])


def test_detector_source_finds_the_detector_or_says_what_to_pass(source_dir, tmp_path):
    assert detector_source(source_dir) == source_dir
    assert detector_source(source_dir.parent) == source_dir  # a checkpoint holding detector/
    with pytest.raises(ValueError, match="no saved detector there"):
        detector_source(tmp_path)


def test_training_from_a_detector_records_it(encoder, source_dir, tmp_path):
    from bel.training import TrainConfig, _detector_stage

    with pytest.raises(ValueError, match="no saved detector there"):
        TrainConfig(stage="detector", train_file="t.txt", detector_init_from=str(tmp_path)).validate()
    config = TrainConfig(
        stage="detector",
        train_file=str(FIXTURES / "bel_train_corpus.txt"),
        encoder=str(encoder),
        output_dir=str(tmp_path / "run"),
        detector_epochs=1,
        detector_init_from=str(source_dir),
        max_train_documents=2,
    )
    config.validate()
    detector = MentionDetector.from_pretrained(_detector_stage(config, None))
    assert detector.model.config.bel_training["init_from"] == str(source_dir)
    assert f"from the detector `{source_dir}`" in detector_section(detector)


def test_ensemble_probe_decodes_the_mean_probability(monkeypatch):
    import importlib.util

    path = Path(__file__).parents[1] / "eval" / "detector_ensemble.py"
    monkeypatch.syspath_prepend(str(path.parent))  # as when run as a script: it imports its sibling
    spec = importlib.util.spec_from_file_location("detector_ensemble", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    spans = [(0, 5), (6, 9)]
    a = torch.tensor([[0.9, 0.1], [0.2, 0.8]]).log()
    b = torch.tensor([[0.5, 0.5], [0.6, 0.4]]).log()
    [[(got_spans, mean)]] = module.averaged([[[(spans, a)]], [[(spans, b)]]])
    assert got_spans == spans and torch.allclose(mean.exp(), torch.tensor([[0.7, 0.3], [0.4, 0.6]]))
    with pytest.raises(ValueError, match="one tokenizer"):
        module.averaged([[[(spans, a)]], [[([(0, 4), (6, 9)], b)]]])
