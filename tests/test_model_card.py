"""The model card `bel train` writes, and the one loader of saved directories (`bel.saving.load_components`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from bel import load_linker
from bel.model_card import LinkerCardData, render_model_card
from bel.saving import load_components

from .conftest import REPO, wordpiece_tokenizer
from .test_pipeline import make_linker

FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT + WordPiece tokenizer saved like a Hub encoder."""
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("encoder")
    tokenizer = wordpiece_tokenizer()
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
        )
    ).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def ncbi_data_dir(tmp_path_factory) -> Path:
    """The fixture corpora laid out as the NCBI Disease dataset (with its MEDIC file name)."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "ncbi_disease"
    folder.mkdir()
    shutil.copyfile(FIXTURES / "bel_train_corpus.txt", folder / "NCBItrainset_corpus.txt")
    shutil.copyfile(FIXTURES / "bel_train_dev.txt", folder / "NCBIdevelopset_corpus.txt")
    shutil.copyfile(FIXTURES / "bel_train_kb.txt", folder / "medic_06Jul2012.txt")
    return root


@pytest.fixture(scope="module")
def trained(encoder_dir, ncbi_data_dir, tmp_path_factory) -> tuple[Path, dict]:
    from bel.training import TrainConfig, train

    output = tmp_path_factory.mktemp("run")
    config = TrainConfig(
        dataset="ncbi-disease", data_dir=str(ncbi_data_dir), encoder=str(encoder_dir), output_dir=str(output),
        num_candidates=4, mode="mention", batch_size=2000, epochs=2, learning_rate=1e-3, warmup_ratio=0.0, use_retrieval_score=False,
        max_train_documents=4, log_every=1,
    )  # fmt: skip
    best = train(config)
    return best, json.loads((output / "train_summary.json").read_text())


def test_trained_model_card_records_data_results_and_hyperparameters(trained):
    best, summary = trained
    readme = (best / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(readme.split("---\n")[1])
    text = readme.split("---\n", 2)[2]
    best_record = summary["history"][summary["best_epoch"]]
    dev = {k.removeprefix("dev/"): round(v, 4) for k, v in best_record.items() if k.startswith("dev/")}
    assert set(dev) == {"acc@1", "acc@5", "mrr", "retriever_acc@1"}
    # front matter: the dataset and the dev results in model-index form
    assert front["datasets"] == ["ncbi-disease"]
    result = front["model-index"][0]["results"][0]
    assert result["dataset"]["type"] == "ncbi-disease" and result["dataset"]["split"] == "dev"
    assert {m["type"]: m["value"] for m in result["metrics"]} == dev
    # text: data, KB, results table, hyperparameters, cost, software
    assert "Training data: NCBI Disease" in text and "Knowledge base: MEDIC (medic_06Jul2012.txt)" in text
    assert "| dataset | split | metric | value |" in text
    for metric, value in dev.items():
        assert f"| ncbi-disease | dev | {metric} | {value} |" in text
    assert "No evaluation results" not in text
    assert "| learning_rate | 0.001 |" in text and "| batch_size | 2000 |" in text
    assert "| head_learning_rate_multiplier | 20.0 |" in text and "| max_train_documents | 4 |" in text
    assert "packing mode `mention`" in text and "4 candidates per mention" in text and "slot pooling `span`" in text
    assert "retriever score as an input: no" in text
    shown = "yes" if summary["config"]["candidate_namespace"] else "no"
    assert f"candidates shown with their id namespace: {shown}" in text
    assert f"Training mentions: {summary['train_mentions']}" in text and "Training time: " in text
    assert f"best epoch: {summary['best_epoch']}" in text
    assert f"torch {torch.__version__}" in text and "transformers " in text and "bel 0." in text
    assert "github.com" not in readme and "bel-project" not in readme


def test_card_of_a_file_based_run_names_the_files(encoder_dir, tmp_path):
    from bel import BelConfig
    from bel.training import TrainConfig, card_data

    config = TrainConfig(
        train_file=str(FIXTURES / "bel_train_corpus.txt"), dev_file=str(FIXTURES / "bel_train_dev.txt"),
        kb_file=str(FIXTURES / "bel_train_kb.txt"), encoder=str(encoder_dir), mode="pair",
    )  # fmt: skip
    model_config = BelConfig(mode="pair", num_candidates=16, slot_pooling="span", use_retrieval_score=True)
    card = card_data(config, model_config, {"epoch": 0, "train_seconds": 1.0, "dev/acc@1": 0.5})
    assert card.datasets == ["bel_train_corpus.txt"] and card.kb_description == "bel_train_kb.txt"
    assert card.dev_results == [{"dataset": "bel_train_dev.txt", "split": "dev", "metrics": {"acc@1": 0.5}}]
    assert card.base_model == str(encoder_dir) and card.hyperparameters["learning_rate"] == 5e-5
    rendered = render_model_card(model_config, card)
    assert "datasets" not in rendered.data.to_dict()  # local file names are no Hub dataset ids
    assert "Training data: bel_train_corpus.txt" in rendered.text and "base_model" not in rendered.data.to_dict()


def test_card_data_rejects_unknown_keys():
    # the keys training used to pass, which the renderer silently ignored
    with pytest.raises(ValueError, match="unknown model card keys.*'dataset'"):
        LinkerCardData.from_dict({"dataset": "ncbi-disease", "metrics": {}, "encoder": "x", "epoch": 0})
    card = LinkerCardData.from_dict({"eval_results": [{"dataset": "d", "split": "dev", "metrics": {"mrr": 1.0}},
                                                      {"dataset": "d", "metrics": {"mrr": 0.5}}]})  # fmt: skip
    assert [r["split"] for r in card.dev_results] == ["dev"] and [r["split"] for r in card.test_results] == ["test"]


@pytest.fixture(scope="module")
def linker_dir(bert_tokenizer, tmp_path_factory) -> Path:
    return make_linker(bert_tokenizer, tmp_path_factory.mktemp("saved") / "linker")


def test_load_components_round_trip(linker_dir, tmp_path):
    model, tokenizer, retriever = load_components(linker_dir)
    assert type(model).__name__ == "BelForMultiCandidateLinking" and not model.training
    assert retriever is not None and len(retriever) > 0 and type(tokenizer).__name__ == "BelTokenizer"
    bare = tmp_path / "bare"
    shutil.copytree(linker_dir, bare)
    shutil.rmtree(bare / "retriever")
    assert load_components(bare)[2] is None


@pytest.mark.parametrize("load", [load_components, load_linker], ids=["load_components", "load_linker"])
def test_pickle_only_checkpoint_is_refused(linker_dir, tmp_path, load):
    pickled = tmp_path / "pickled"
    shutil.copytree(linker_dir, pickled)
    (pickled / "model.safetensors").unlink()
    torch.save({}, pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="only as pickle.*pytorch_model.bin"):
        load(pickled)


def test_load_components_refuses_what_is_not_a_bel_model(encoder_dir, tmp_path):
    with pytest.raises(ValueError, match="holds a 'bert' model, not a bel linker"):
        load_components(encoder_dir)
    with pytest.raises(FileNotFoundError, match="not a saved bel model"):
        load_components(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing does not exist; pass a directory saved with"):
        load_components(tmp_path / "missing")
