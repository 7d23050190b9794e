"""Speed benchmark: token counts per mode, ratios to pair, the bel bench JSON (tiny model, fixture data)."""

from __future__ import annotations

import json

import pytest

from bel.benchmark import cross_encoder_pairs, run_benchmark, token_counts
from bel.data import read_pubtator
from bel.examples import build_examples

from .helpers import FIXTURES, save_tiny_encoder, tiny_model, train_fixture


@pytest.fixture(scope="module")
def inputs():
    kb, _, retriever = train_fixture()
    docs = read_pubtator(FIXTURES / "bel_train_dev.txt")[:2]
    return [e.input for e in build_examples(docs, retriever, 4, kb=kb)]


def test_packing_saves_tokens_over_pair(inputs, bert_tokenizer):
    model = tiny_model(bert_tokenizer, num_candidates=4)
    counts = {
        (mode, template): token_counts(bert_tokenizer, inputs, mode, template, model.config, 4096)
        for mode in ("pair", "mention", "sentence", "document")
        for template in ("paper", "compact")
    }
    pairs = sum(len(c) for doc in inputs for c in doc.candidates)
    assert counts[("pair", "paper")]["sequences"] == pairs
    assert counts[("mention", "paper")]["sequences"] == sum(len(doc.mentions) for doc in inputs)
    assert counts[("mention", "paper")]["tokens"] < counts[("pair", "paper")]["tokens"]
    assert counts[("sentence", "paper")]["tokens"] <= counts[("mention", "paper")]["tokens"]
    for mode in ("mention", "sentence", "document"):
        assert counts[(mode, "compact")]["tokens"] < counts[(mode, "paper")]["tokens"]
    for count in counts.values():
        assert count["padded_tokens"] >= count["tokens"]
    assert len(cross_encoder_pairs(inputs)) == pairs


@pytest.mark.slow  # times every mode, training steps included
def test_run_benchmark_reports_every_mode_against_pair(inputs, bert_tokenizer):
    model = tiny_model(bert_tokenizer, num_candidates=4)
    result = run_benchmark(
        model,
        bert_tokenizer,
        inputs,
        modes=("pair", "mention", "sentence"),
        templates=("paper", "compact"),
        repeats=2,
        pair_sweep=(256, 1024),
        sweep_documents=1,
        packed_sweep=(512, 2048),
    )
    results = result["results"]
    assert set(results) == {
        "pair",
        "pair@bs2",
        "mention/paper",
        "mention/compact",
        "sentence/paper",
        "sentence/compact",
    }
    assert result["settings"]["pair_max_tokens"] in (256, 1024)
    sweeps = result["settings"]["packed_sweep_seconds"]
    assert set(sweeps) == set(results) - {"pair", "pair@bs2"} and all(
        set(s) == {"512", "2048"} for s in sweeps.values()
    )
    for name, timings in sweeps.items():  # each packed mode runs with its fastest budget
        assert results[name]["max_tokens"] == int(min(timings, key=timings.get))
    assert results["pair"]["speedup_vs_pair"] == 1.0 and results["pair"]["ideal_ratio"] == 1.0
    for name, row in results.items():
        for key in ("mentions_per_second", "sequences", "tokens", "padded_tokens", "speedup_vs_pair", "ideal_ratio"):
            assert row[key] is not None, (name, key)
        assert len(row["seconds_all"]) == 2
    assert results["mention/compact"]["ideal_ratio"] > results["mention/paper"]["ideal_ratio"] > 1.0
    assert results["pair@bs2"]["sequences"] == results["pair"]["sequences"]
    assert "train_mentions_per_second" in results["sentence/paper"]
    assert "train_seconds" not in results["pair@bs2"]  # the bs-2 reference row is inference only


@pytest.mark.slow  # a full `bel bench` run with the sentence-transformers cross-encoder
def test_bel_bench_cli_with_cross_encoder(tmp_path, bert_tokenizer):
    pytest.importorskip("sentence_transformers")
    from bel.cli import main

    encoder = save_tiny_encoder(tmp_path / "encoder")
    out = tmp_path / "bench.json"
    args = [
        "bench",
        "--corpus-file",
        str(FIXTURES / "bel_train_dev.txt"),
        "--kb-file",
        str(FIXTURES / "bel_train_kb.txt"),
        "--encoder",
        str(encoder),
        "--num-candidates",
        "4",
        "--modes",
        "pair",
        "mention",
        "--templates",
        "paper",
        "--max-documents",
        "2",
        "--repeats",
        "1",
        "--pair-sweep",
        "512",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert set(result["results"]) == {"pair", "pair@bs2", "mention/paper", "cross-encoder"}
    cross = result["results"]["cross-encoder"]
    assert cross["sequences"] == result["results"]["pair"]["sequences"] and cross["mentions_per_second"] > 0
