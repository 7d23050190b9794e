"""Training: whole-mention batches, leave-document-out candidates, 2-process DDP, crash + resume to identical weights."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bel import BelTokenizer
from bel.batching import TokenBudgetBatchSampler, sequence_units
from bel.checkpointing import COMPLETE_MARKER, complete_checkpoints, resolve_checkpoint
from bel.examples import build_examples

from .helpers import (
    FIXTURES,
    REPO,
    TWO_PROCESSES,
    run,
    save_tiny_encoder,
    tiny_model,
    train_fixture,
    wordpiece_tokenizer,
)
from .remote import run_without_bel

CORPUS, DEV, KB = FIXTURES / "bel_train_corpus.txt", FIXTURES / "bel_train_dev.txt", FIXTURES / "bel_train_kb.txt"


@pytest.fixture(scope="module")
def data():
    return train_fixture()


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT + WordPiece tokenizer saved like a Hub encoder, to pass as --encoder."""
    return save_tiny_encoder(tmp_path_factory.mktemp("encoder"))


def test_training_candidates_exclude_own_alias_and_inject_gold(data):
    kb, docs, retriever = data
    examples = build_examples(docs, retriever, 3, kb=kb, training=True, seed=1)
    again = build_examples(docs, retriever, 3, kb=kb, training=True, seed=1)
    assert [e.candidate_ids for e in examples] == [e.candidate_ids for e in again]  # seeded shuffle
    nil_mentions = sum(not m.ids for d in docs for m in d.mentions)
    assert nil_mentions >= 1
    assert sum(len(e.gold_ids) for e in examples) == sum(len(d.mentions) for d in docs) - nil_mentions
    for example in examples:
        for labels, ids in zip(example.input.candidate_labels, example.candidate_ids, strict=True):
            assert 1 <= len(ids) <= 3 and sum(labels) == 1  # gold always present exactly once in training
    # the alias rows contributed by a document are hidden when that document is excluded
    doc = docs[0]
    mention = next(m for m in doc.mentions if m.ids)
    alias_rows = [r for r, sources in retriever.alias_sources.items() if sources == [doc.id]]
    shown = retriever.search([mention.text], top_k=20, exclude_sources=[{doc.id}])[0]
    assert not any(c.alias and c.name in [retriever.row_name[r] for r in alias_rows] for c in shown)
    # shuffling: the gold is not always in the same position
    positions = {labels.index(1.0) for e in examples for labels in e.input.candidate_labels}
    assert len(positions) > 1


@pytest.mark.parametrize("mode", ["pair", "mention", "sentence", "document"])
def test_batches_keep_every_slot_of_a_mention_together(data, mode):
    kb, docs, retriever = data
    examples = build_examples(docs, retriever, 4, kb=kb, training=True)
    tokenizer = BelTokenizer.from_encoder(wordpiece_tokenizer())
    sequences = tokenizer.pack([e.input for e in examples], mode=mode, max_length=128)
    units = sequence_units(sequences)
    owner = {}
    for u, unit in enumerate(units):
        for seq in unit:
            for key in zip(seq["slot_document"], seq["slot_mention"], strict=True):
                assert owner.setdefault(key, u) == u
    assert len(owner) == sum(len(e.gold_ids) for e in examples)
    sampler = TokenBudgetBatchSampler(units, max_tokens=600, seed=3)
    first = list(sampler)
    assert sorted(i for batch in first for i in batch) == list(range(len(units)))
    for batch in first:
        if len(batch) > 1:
            rows = sum(len(units[i]) for i in batch)
            assert rows * max(len(s["input_ids"]) for i in batch for s in units[i]) <= 600
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_latest_ignores_incomplete_checkpoints(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        path = tmp_path / "checkpoints" / f"step_{step:08d}"
        path.mkdir(parents=True)
        if complete:
            (path / COMPLETE_MARKER).write_text("ok")
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step_00000002", "step_00000004"]
    assert resolve_checkpoint("latest", tmp_path).name == "step_00000004"
    with pytest.raises(FileNotFoundError, match="COMPLETE"):
        resolve_checkpoint(str(tmp_path / "checkpoints" / "step_00000006"), tmp_path)


def _train_args(encoder_dir: Path, output: Path, *extra: str) -> list[str]:
    return [
        str(REPO / "train.py"),
        "--train-file",
        str(CORPUS),
        "--dev-file",
        str(DEV),
        "--kb-file",
        str(KB),
        "--encoder",
        str(encoder_dir),
        "--output-dir",
        str(output),
        "--num-candidates",
        "4",
        "--mode",
        "sentence",
        "--batch-size",
        "400",
        "--log-every",
        "1",
        "--learning-rate",
        "1e-3",
        *extra,
    ]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "LOCAL_RANK", "RANK", "WORLD_"))}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra})
    return env


def _run(args: list[str], env: dict, timeout: int = 240):
    """In a session of its own, the whole group killed at the end: no DDP rank outlives a failed test."""
    return run(args, env, timeout, cwd=REPO)


@pytest.mark.slow  # 2-process DDP training, then a fresh interpreter
def test_two_process_ddp_training_checkpoint_loads_with_remote_code(encoder_dir, tmp_path):
    output = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", *TWO_PROCESSES]
    result = _run(launcher + _train_args(encoder_dir, output, "--max-steps", "2"), _env(ACCELERATE_USE_CPU="true"))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and "MULTI_CPU" in summary["distributed_type"]
    assert summary["global_step"] == 2 and summary["history"][0]["train_seconds"] > 0
    assert "eval_seconds" in summary["history"][0]
    metrics = [json.loads(line) for line in (output / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "train/loss" in m] == [1, 2]
    best = Path(summary["best_dir"])
    loaded = run_without_bel(
        f"""
import json, torch
from transformers import AutoModel, AutoTokenizer
model = AutoModel.from_pretrained({str(REPO / best)!r}, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained({str(REPO / best)!r}, trust_remote_code=True)
doc = type(tokenizer).__module__
from importlib import import_module
LinkingInput = import_module(doc).LinkingInput
scores = model.score(tokenizer, [LinkingInput("Familial breast cancer.", [(9, 22)], [["breast neoplasms", "fever"]],
                                              candidate_scores=[[0.9, 0.2]])])  # train's default uses them
print(json.dumps({{"class": type(model).__name__, "mode": model.config.mode, "scores": scores[0][0]}}))
""",
        cwd=tmp_path,
    )
    assert loaded["class"] == "BelForMultiCandidateLinking" and loaded["mode"] == "sentence"
    assert len(loaded["scores"]) == 2 and all(abs(s) < 1e6 for s in loaded["scores"])


@pytest.mark.slow  # three training runs in fresh interpreters
def test_crash_and_resume_matches_uninterrupted_run(encoder_dir, tmp_path):
    common = ("--max-steps", "6", "--checkpoint-every", "2", "--keep-checkpoints", "5")
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    first = _run([sys.executable, *_train_args(encoder_dir, straight, *common)], _env())
    assert first.returncode == 0, first.stderr[-3000:]
    killed = _run([sys.executable, *_train_args(encoder_dir, crashed, *common, "--stop-after-step", "4")], _env())
    assert killed.returncode == 3, killed.stderr[-3000:]
    assert [p.name for p in complete_checkpoints(crashed)] == ["step_00000002", "step_00000004"]
    meta = json.loads((crashed / "checkpoints" / "step_00000004" / "meta.json").read_text())
    assert meta["epoch"] == 0 and meta["batches_seen"] == 4  # mid-epoch: the epoch has more batches than that
    # a half-written newer checkpoint (no completion marker) must not be picked by `latest`
    partial = crashed / "checkpoints" / "step_00000005"
    shutil.copytree(crashed / "checkpoints" / "step_00000004", partial)
    (partial / COMPLETE_MARKER).unlink()
    (partial / "model.safetensors").write_bytes(b"truncated")
    resumed = _run(
        [sys.executable, *_train_args(encoder_dir, crashed, *common, "--resume-from-checkpoint", "latest")], _env()
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((crashed / "train_summary.json").read_text())
    assert summary["resumed_from"].endswith("step_00000004") and summary["global_step"] == 6
    a = load_file(straight / "checkpoints" / "step_00000006" / "model.safetensors")
    b = load_file(crashed / "checkpoints" / "step_00000006" / "model.safetensors")
    start = load_file(crashed / "checkpoints" / "step_00000002" / "model.safetensors")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert max((a[k] - start[k]).abs().max().item() for k in a) > 1e-4  # training did move the weights


def _in_process(encoder_dir: Path, **config) -> dict:
    """TrainConfig arguments for a quick in-process run on the fixture corpus (4 documents, one batch each epoch)."""
    files = dict(train_file=str(CORPUS), dev_file=str(DEV), kb_file=str(KB), encoder=str(encoder_dir))
    return dict(**files, num_candidates=4, batch_size=2000, warmup_ratio=0.0, max_train_documents=4, **config)


def test_early_stopping_keeps_best_epoch_in_process(encoder_dir, tmp_path):
    from bel.training import TrainConfig, train

    config = _in_process(encoder_dir, output_dir=str(tmp_path / "run"), mode="mention", epochs=4, learning_rate=0.0)
    best = train(TrainConfig(**config, early_stopping_patience=1, log_every=1))
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    # lr 0: dev Acc@1 never improves after epoch 0, so patience 1 stops after epoch 1 and epoch 0 stays the best
    assert [h["epoch"] for h in summary["history"]] == [0, 1] and summary["best_epoch"] == 0
    assert summary["history"][0]["dev/acc@1"] == summary["history"][1]["dev/acc@1"]
    assert best == tmp_path / "run" / "best" and (best / "config.json").is_file()
    saved = json.loads((best / "config.json").read_text())
    assert saved["mode"] == "mention" and saved["encoder"]["attention_probs_dropout_prob"] == 0.0  # the default


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_attention_dropout_reaches_every_attention_layer(bert_tokenizer, kind):
    from bel.encoders import set_attention_dropout

    model = tiny_model(bert_tokenizer, kind=kind)
    attention = [m for n, m in model.named_modules() if n.endswith("attention.self.dropout")]
    assert len(attention) == 2 and all(m.p == 0.1 for m in attention)  # the encoder config's default
    assert set_attention_dropout(model, 0.0) == 2
    assert all(m.p == 0.0 for m in attention) and model.config.encoder.attention_probs_dropout_prob == 0.0
    hidden = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and m not in attention]
    assert hidden and all(m.p > 0 for m in hidden)  # hidden-state dropout is left alone
    assert set_attention_dropout(model, -1) == 0 and all(m.p == 0.0 for m in attention)
    with pytest.raises(ValueError, match="probability"):
        set_attention_dropout(model, 1.5)


def test_parameter_groups_give_the_retrieval_weight_its_own_learning_rate(bert_tokenizer):
    from bel.training import TrainConfig, parameter_groups

    model = tiny_model(bert_tokenizer, use_retrieval_score=True)
    groups = parameter_groups(model, TrainConfig(learning_rate=2e-5))
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    head = {id(p) for p in groups[-1]["params"]}
    assert head == {id(model.retrieval_weight), id(model.scorer.weight), id(model.scorer.bias)}
    assert groups[-1]["lr"] == 2e-5 * 20


def test_init_from_continues_from_a_saved_model(encoder_dir, tmp_path):
    from bel.training import TrainConfig, train

    common = _in_process(encoder_dir, epochs=1, use_retrieval_score=False)
    first = train(TrainConfig(output_dir=str(tmp_path / "a"), mode="mention", learning_rate=1e-2, **common))
    # lr 0: the second run must end exactly where the first one did (a fresh start would not)
    second = train(
        TrainConfig(output_dir=str(tmp_path / "b"), mode="sentence", learning_rate=0.0, init_from=str(first), **common)
    )
    before, after = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    fresh = train(TrainConfig(output_dir=str(tmp_path / "c"), mode="sentence", learning_rate=0.0, **common))
    assert not all(torch.equal(before[k], v) for k, v in load_file(fresh / "model.safetensors").items())
    config = json.loads((second / "config.json").read_text())
    assert (config["mode"], config["slot_pooling"]) == ("sentence", "span")
    with pytest.raises(ValueError, match="use-retrieval-score"):
        train(
            TrainConfig(output_dir=str(tmp_path / "d"), init_from=str(first), **{**common, "use_retrieval_score": True})
        )


def test_candidate_namespace_is_saved_with_the_model(encoder_dir, tmp_path):
    from bel.saving import load_components
    from bel.training import TrainConfig, train

    config = _in_process(encoder_dir, output_dir=str(tmp_path / "off"), mode="sentence", epochs=1)
    off = train(TrainConfig(**config))
    assert load_components(off)[0].config.candidate_namespace is False  # the default
    shown = train(TrainConfig(**{**config, "output_dir": str(tmp_path / "on")}, candidate_namespace=True))
    assert json.loads((shown / "config.json").read_text())["candidate_namespace"] is True
    assert load_components(shown)[0].config.candidate_namespace is True
