"""Model soups (`bel soup`): the mean of several checkpoints' weights, one configuration, one start."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from bel.cli import main
from bel.saving import load_linker, save_detector
from bel.souping import SOUP_KEY, average_state_dicts, soup_checkpoints

from .helpers import make_linker, tiny_detector


@pytest.fixture(scope="module")
def two_linkers(bert_tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("soup")
    return [make_linker(bert_tokenizer, root / f"seed{seed}", seed=seed) for seed in (0, 1)]


def test_average_state_dicts_means_floats_and_keeps_equal_integers():
    a = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16), "ids": torch.arange(3)}
    b = {"w": torch.tensor([2.0, 4.0], dtype=torch.float16), "ids": torch.arange(3)}
    averaged = average_state_dicts([a, b])
    assert averaged["w"].dtype == torch.float16 and averaged["w"].tolist() == [1.5, 3.0]
    assert torch.equal(averaged["ids"], torch.arange(3))


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ({"w": torch.zeros(2)}, "other weights"),
        ({"w": torch.zeros(3), "ids": torch.arange(3)}, "shapes"),
        ({"w": torch.zeros(2), "ids": torch.arange(1, 4)}, "integer tensor 'ids' differs"),
    ],
)
def test_average_state_dicts_refuses_models_that_differ(other, message):
    with pytest.raises(ValueError, match=message):
        average_state_dicts([{"w": torch.ones(2), "ids": torch.arange(3)}, other])
    with pytest.raises(ValueError, match="at least two"):
        average_state_dicts([other])


def test_a_linker_soup_holds_the_mean_weights_and_links(two_linkers, tmp_path):
    souped = soup_checkpoints(two_linkers, tmp_path / "soup")
    states = [load_file(path / "model.safetensors") for path in two_linkers]
    result = load_file(souped / "model.safetensors")
    name = next(n for n, t in result.items() if t.is_floating_point() and not torch.equal(states[0][n], states[1][n]))
    assert torch.allclose(result[name], (states[0][name] + states[1][name]) / 2)
    config = json.loads((souped / "config.json").read_text())
    assert config[SOUP_KEY]["sources"] == [str(path) for path in two_linkers]
    assert "a model soup" in (souped / "README.md").read_text()
    output = load_linker(souped)({"text": "Varicella is a viral infection with fever.", "mentions": [[0, 9]]})
    assert [m["start"] for m in output] == [0] and output[0]["entity_id"] is not None


def test_a_soup_refuses_other_configurations_and_a_full_output(two_linkers, bert_tokenizer, tmp_path):
    other = make_linker(bert_tokenizer, tmp_path / "sentence", mode="sentence")
    with pytest.raises(ValueError, match=r"configured differently .*\(mode\)"):
        soup_checkpoints([two_linkers[0], other], tmp_path / "soup")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        soup_checkpoints(two_linkers, tmp_path / "full")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        soup_checkpoints([two_linkers[0], tmp_path], tmp_path / "soup2")


def test_detectors_are_souped_alone_or_inside_linkers(two_linkers, bert_tokenizer, tmp_path):
    detectors = [tiny_detector(bert_tokenizer, seed=seed) for seed in (0, 1)]
    folders = [detector.save_pretrained(tmp_path / f"det{seed}") for seed, detector in enumerate(detectors)]
    souped = soup_checkpoints(folders, tmp_path / "det-soup")
    expected = (detectors[0].model.classifier.weight + detectors[1].model.classifier.weight) / 2
    assert torch.allclose(load_file(souped / "model.safetensors")["classifier.weight"], expected)
    linkers = []
    for seed, detector in enumerate(detectors):
        linker = tmp_path / f"linker{seed}"
        shutil.copytree(two_linkers[0], linker)  # the same reranker twice: only the detectors differ
        save_detector(linker, detector)
        linkers.append(linker)
    both = soup_checkpoints(linkers, tmp_path / "linker-soup")
    assert torch.allclose(load_file(both / "detector" / "model.safetensors")["classifier.weight"], expected)
    assert SOUP_KEY in json.loads((both / "detector" / "config.json").read_text())
    entities = load_linker(both)("Varicella is a viral infection with fever.")
    assert entities and all(m["type"] == "Disease" for m in entities)


def test_bel_soup_command(two_linkers, tmp_path, capsys):
    assert main(["soup", *map(str, two_linkers), "--output-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert main(["soup", str(two_linkers[0]), "--output-dir", str(tmp_path / "one")]) == 2
    assert "at least two" in capsys.readouterr().err
