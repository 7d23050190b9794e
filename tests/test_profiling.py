"""Profiling a whole `bel link` run (bel.profiling, `bel bench --end-to-end`): counts, stages, both input kinds."""

from __future__ import annotations

import json

import pytest

from bel.data.pubtator import read_pubtator
from bel.linking import link_file
from bel.profiling import (
    STAGES,
    median_profile,
    profile_in_subprocess,
    profile_link,
    stage_breakdown,
    stage_shares,
    subset_corpus,
)


@pytest.fixture(scope="module")
def sentence_linker(corpus):
    from bel import load_linker

    return load_linker(corpus[0])


def check_profile(profile: dict, documents: int) -> None:
    """Every document counted, every stage present and non-negative, the named stages within the wall time."""
    assert profile["documents"] == documents
    assert set(profile["stage_seconds"]) == set(STAGES)
    assert all(seconds >= 0 for seconds in profile["stage_seconds"].values())
    named = sum(seconds for name, seconds in profile["stage_seconds"].items() if name != "other")
    assert named <= profile["seconds"]
    assert sum(profile["stage_seconds"].values()) == pytest.approx(profile["seconds"])
    assert sum(profile["stage_shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(profile["decided_by"].values()) == profile["mentions"]
    assert profile["documents_per_second"] == pytest.approx(documents / profile["seconds"])
    assert profile["peak_rss_mb"] > 0


def test_given_spans_profile_counts_every_document_and_mention(corpus, sentence_linker):
    _, source, count = corpus
    profile = profile_link(sentence_linker, source, detect_mentions=False, batch_size=3)
    check_profile(profile, len(read_pubtator(source)))
    assert profile["mentions"] == count
    assert profile["stage_seconds"]["read"] > 0 and profile["stage_seconds"]["write"] > 0
    assert profile["stage_seconds"]["retrieve"] > 0


def test_raw_text_profile_detects_and_times_detection(corpus, sentence_linker):
    _, source, _ = corpus
    profile = profile_link(sentence_linker, source, detect_mentions=True, cascade=False)
    check_profile(profile, len(read_pubtator(source)))
    assert profile["mentions"] > 0
    assert profile["stage_seconds"]["detect"] > 0
    assert profile["decided_by"] == {"reranker": profile["mentions"]}  # no cascade: the reranker decides all


def test_link_file_reports_its_own_steps(corpus, sentence_linker, tmp_path):
    _, source, _ = corpus
    steps: dict[str, float] = {}
    link_file(sentence_linker, source, tmp_path / "out.jsonl", stage_seconds=steps)
    assert set(steps) == {"read", "link", "write", "merge"}
    assert all(seconds > 0 for seconds in steps.values())


def test_stage_breakdown_leaves_the_rest_to_other():
    stages = stage_breakdown(10.0, {"read": 1.0, "link": 7.0, "write": 0.5, "merge": 0.5}, {"forward": 5.0})
    assert stages["other"] == pytest.approx(3.0)  # 10 - (1 + 5 + 0.5 + 0.5): the pipeline's 2 s unattributed too
    assert stages["detect"] == 0.0 and list(stages) == list(STAGES)
    assert stage_breakdown(1.0, {"read": 2.0}, {})["other"] == 0.0
    assert stage_shares({"a": 1.0, "b": 3.0}) == {"a": 0.25, "b": 0.75}


def test_median_profile_takes_medians_and_keeps_counts():
    runs = [
        {
            "documents": 4,
            "mentions": 8,
            "seconds": s,
            "peak_rss_mb": m,
            "stage_seconds": {"read": s / 2, "other": s / 2},
        }
        for s, m in ((1.0, 100.0), (3.0, 300.0), (2.0, 200.0))
    ]
    result = median_profile(runs)
    assert result["seconds"] == 2.0 and result["peak_rss_mb"] == 200.0
    assert result["documents_per_second"] == 2.0 and result["mentions_per_second"] == 4.0
    assert result["stage_seconds"] == {"read": 1.0, "other": 1.0}
    assert result["seconds_all"] == [1.0, 3.0, 2.0] and result["repeats"] == 3


def test_subset_corpus_keeps_the_first_documents(corpus, tmp_path):
    _, source, _ = corpus
    subset = subset_corpus(source, 3, tmp_path / "subset", "pubtator")
    assert [d.id for d in read_pubtator(subset)] == [d.id for d in read_pubtator(source)][:3]
    lines = tmp_path / "lines.txt"
    lines.write_text("a\n\nb\nc\n", encoding="utf-8")
    assert subset_corpus(lines, 2, tmp_path / "txt", "txt").read_text(encoding="utf-8") == "a\nb\n"


@pytest.mark.slow  # a fresh interpreter
def test_profile_in_subprocess_reports_its_own_peak_memory(corpus):
    model, source, count = corpus
    profile = profile_in_subprocess(model, source, detect_mentions=False, threads=1)
    check_profile(profile, len(read_pubtator(source)))
    assert profile["mentions"] == count and profile["threads"] == 1 and profile["load_seconds"] > 0


def in_process(checkpoint, corpus, *, threads=None, backend="torch", device="cpu", **options) -> dict:
    """`profile_in_subprocess` without the subprocess (a fresh interpreter per run is the slow test's)."""
    from bel import load_linker

    assert threads == 1 and backend == "torch" and device == "cpu"  # --device auto is the CPU on this machine
    return profile_link(load_linker(checkpoint, device), corpus, **options)


def test_bench_end_to_end_writes_both_profiles(corpus, tmp_path, monkeypatch):
    from bel.cli import main

    monkeypatch.setattr("bel.profiling.profile_in_subprocess", in_process)
    model, source, count = corpus
    output = tmp_path / "bench.json"
    argv = ["bench", "--end-to-end", str(model), "--corpus-file", str(source), "--max-documents", "4"]
    assert main([*argv, "--threads", "1", "--repeats", "1", "--output", str(output)]) == 0
    result = json.loads(output.read_text(encoding="utf-8"))
    assert set(result) >= {"settings", "raw_text", "given_spans", "manifest"}
    assert result["settings"]["max_documents"] == 4 and result["settings"]["threads"] == 1
    for name in ("raw_text", "given_spans"):
        profile = result[name]
        check_profile(profile, 4)
        for key in ("mentions_per_second", "stage_shares", "decided_by", "seconds_all"):
            assert key in profile
    assert 0 < result["given_spans"]["mentions"] < count  # the first 4 of the 10 documents' mentions


def test_bench_refuses_backend_without_end_to_end(corpus):
    from bel.cli import main

    with pytest.raises(SystemExit, match="--end-to-end"):
        main(["bench", "--model", str(corpus[0]), "--backend", "int8"])
