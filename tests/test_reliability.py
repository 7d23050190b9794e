"""Issue 6 and 15: bad input, NIL without candidates, encodings, huge and exotic documents, SIGKILL + restart (that
must resume, not relink), two writers on one output, per-document memory, determinism."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import pytest

from bel.linking import iter_documents, link_file
from bel.matching_bel import MentionMatcher
from bel.soak import RssRecorder, write_abstracts

from .helpers import ALL_NAMES, TEXT, bel, write_pubtator_corpus

EXOTIC = (
    "Ο ασθενής έχει fever και rash. Cafe\u0301 au lait spots \U0001f9ec with breast cancer!\r\n"
    "Ovarian cancer \u2014 \U0001f468\u200d\U0001f469\u200d\U0001f467 renal failure.\r\n"
)


# ------------------------------------------------------------------------------------------------ pipeline input
@pytest.mark.parametrize("text", ["", "   ", "\r\n\t "])
def test_empty_or_blank_text_gives_no_mentions(linker, text):
    assert linker(text) == []
    assert linker({"text": text}) == []
    assert linker({"text": text, "mentions": []}) == []


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ((5, 500), r"input 1, mention 1 \(5, 500\): the span is outside the text"),
        ((-1, 3), r"input 1, mention 1 \(-1, 3\): the span is outside the text"),
        ((9, 3), r"input 1, mention 1 \(9, 3\): the span is reversed"),
        ((4, 4), r"input 1, mention 1 \(4, 4\): zero-length span"),
    ],
)
def test_bad_spans_name_the_input_and_mention(linker, span, message):
    good = {"text": TEXT, "mentions": [{"start": 0, "end": 9}]}
    bad = {"text": TEXT, "mentions": [{"start": 0, "end": 9}, {"start": span[0], "end": span[1]}]}
    with pytest.raises(ValueError, match=message):
        linker([good, bad])


def test_malformed_inputs_are_rejected(linker):
    with pytest.raises(ValueError, match="input 0: expected a string or a dict"):
        linker([42])
    with pytest.raises(ValueError, match="input 0, mention 0: start/end must be integers"):
        linker({"text": TEXT, "mentions": [{"start": 0.0, "end": 9}]})
    with pytest.raises(ValueError, match="input 0, mention 0: expected"):
        linker({"text": TEXT, "mentions": [{"begin": 0}]})


def test_overlapping_spans_are_each_linked(linker):
    spans = [{"start": 66, "end": 79}, {"start": 73, "end": 79}, {"start": 66, "end": 72}]
    out = linker({"text": TEXT, "mentions": spans})
    assert [m["text"] for m in out] == ["breast cancer", "cancer", "breast"]
    assert all(m["candidates"] for m in out)


def test_mention_without_candidates_is_nil_with_reason(linker):
    text = "Breast cancer and \u2603\u2603\u2603."
    out = linker({"text": text, "mentions": [{"start": 18, "end": 21}, {"start": 0, "end": 13}]})
    assert out[0]["text"] == "\u2603\u2603\u2603"
    assert (out[0]["entity_id"], out[0]["entity_name"], out[0]["score"], out[0]["candidates"]) == (None, None, None, [])
    assert out[0]["nil_reason"] == "no_candidates"
    assert out[1]["entity_id"] is not None and "nil_reason" not in out[1]


# ------------------------------------------------------------------------------------------------ offsets, size
def test_exotic_text_offsets_index_the_original(linker):
    expected = MentionMatcher(ALL_NAMES).find(EXOTIC)
    out = linker(EXOTIC)
    assert [(m["start"], m["end"]) for m in out] == expected
    assert [m["text"] for m in out] == ["fever", "rash", "breast cancer", "Ovarian cancer", "renal failure"]
    assert all(EXOTIC[m["start"] : m["end"]] == m["text"] for m in out)


@pytest.mark.parametrize("mode", ["pair", "mention", "sentence", "passage", "document"])
def test_long_document_is_linked_completely_in_every_mode(linker, mode):
    text = (EXOTIC + TEXT + " ") * 60  # ~12,000 characters, 660 mentions
    expected = MentionMatcher(ALL_NAMES).find(text)
    out = linker(text, mode=mode)
    assert [(m["start"], m["end"]) for m in out] == expected
    assert all(m["entity_id"] is not None for m in out)
    assert all(text[m["start"] : m["end"]] == m["text"] for m in out)


@pytest.mark.slow  # half a minute of CPU on 2 cores
def test_200k_character_document(linker):
    text = (EXOTIC + TEXT + " ") * 1000
    text = text[:200_000]
    assert len(text) == 200_000
    expected = MentionMatcher(ALL_NAMES).find(text)
    spans = [{"start": s, "end": e} for s, e in expected]
    out = linker({"text": text, "mentions": spans}, mode="document")
    assert len(out) == len(expected) > 10_000
    assert all(text[m["start"] : m["end"]] == m["text"] and m["candidates"] for m in out)


# ------------------------------------------------------------------------------------------------ files
@pytest.mark.slow  # `bel link` in a fresh interpreter
def test_non_utf8_input_names_file_and_line(linker_dir, tmp_path):
    txt = tmp_path / "in.txt"
    txt.write_bytes(b"Breast cancer.\nFever \xff here.\n")
    result = bel("link", str(linker_dir), str(txt), "--output", str(tmp_path / "out.jsonl"))
    assert result.returncode == 2 and f"{txt}:2: not valid UTF-8 (byte 0xff at column 7)" in result.stderr
    pubtator = tmp_path / "in.pubtator"
    pubtator.write_bytes(b"1|t|Breast cancer.\n1|a|Fever \xe9 here.\n")
    with pytest.raises(ValueError, match=f"{pubtator}:2: not valid UTF-8"):
        list(iter_documents(pubtator, "pubtator"))


def test_pubtator_errors_name_file_and_line(tmp_path):
    fields = tmp_path / "fields.pubtator"
    fields.write_text("1|t|Breast cancer.\n1|a|Fever.\n1\t0\n")
    with pytest.raises(ValueError, match=f"{fields}:3"):
        list(iter_documents(fields, "pubtator"))
    offsets = tmp_path / "offsets.pubtator"
    offsets.write_text("1|t|Breast cancer.\n1|a|Fever.\n1\t0\t6\tcancer\tDisease\tD1\n")
    with pytest.raises(ValueError, match=f"{offsets}:3: .*mention 'cancer' does not match"):
        list(iter_documents(offsets, "pubtator"))


# ------------------------------------------------------------------------------------------------ crash, determinism
def link_args(model, source, output, *options: str) -> list[str]:
    """`bel link MODEL SOURCE --output OUTPUT OPTIONS...` as arguments after `bel`."""
    return ["link", str(model), str(source), "--output", str(output), *options]


@pytest.mark.slow  # `bel link` twice in fresh interpreters, one killed
def test_sigkill_then_restart_finishes_without_half_written_output(linker_dir, linker, tmp_path):
    source = tmp_path / "in.pubtator"
    write_pubtator_corpus(source, copies=30)  # 150 documents
    reference = link_file(linker, source, tmp_path / "reference.jsonl", batch_size=16)

    out = tmp_path / "out.jsonl"
    sidecar = tmp_path / "out.jsonl.part-0-of-1.jsonl.progress.json"
    command = [sys.executable, "-m", "bel", *link_args(linker_dir, source, out, "--batch-size", "4", "--no-progress")]
    process = subprocess.Popen(
        command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sidecar.exists() and json.loads(sidecar.read_text() or "{}").get("documents", 0) >= 20:
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    done = json.loads(sidecar.read_text())["documents"]
    assert 20 <= done < 150 and not out.exists()

    result = bel("--log-level", "INFO", *link_args(linker_dir, source, out, "--batch-size", "4"))
    assert result.returncode == 0, result.stderr[-3000:]
    # it resumed: only the documents not yet done were linked again (a restart from zero would link all 150)
    assert f"linked {150 - done} documents in this run ({done} were already linked before it)" in result.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pubtator", "out.jsonl", "reference.jsonl"]


@pytest.mark.slow  # `bel link` twice in fresh interpreters
def test_two_runs_on_one_output_one_refused_the_other_correct(linker_dir, linker, tmp_path):
    source = tmp_path / "in.pubtator"
    write_pubtator_corpus(source, copies=10)  # 50 documents
    reference = link_file(linker, source, tmp_path / "reference.jsonl").read_bytes()
    out = tmp_path / "out.jsonl"
    sidecar = tmp_path / "out.jsonl.part-0-of-1.jsonl.progress.json"
    arguments = ["link", str(linker_dir), str(source), "--output", str(out), "--batch-size", "2", "--no-progress"]
    first = subprocess.Popen(
        [sys.executable, "-m", "bel", *arguments],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (sidecar.exists() and json.loads(sidecar.read_text() or "{}").get("documents", 0) >= 2):
            assert time.monotonic() < deadline and first.poll() is None, "the first run did not start linking"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run, its locks held
        second = bel(*arguments)
        os.kill(first.pid, signal.SIGCONT)
        assert second.returncode == 2
        assert f"PID {first.pid}, holding the lock {out}.lock" in second.stderr
        assert first.wait(timeout=120) == 0, first.stderr.read()[-3000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
    assert out.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pubtator", "out.jsonl", "reference.jsonl"]


@pytest.mark.slow  # `bel link` in a fresh interpreter
def test_output_is_byte_identical_across_runs_and_batch_sizes(linker_dir, linker, tmp_path):
    """`bel link --deterministic` (batch 5) == in-process link_file (batch 1 and 3, twice); the SIGKILL test also
    compares runs (without --deterministic, a few scores may differ by 1e-6 between batch sizes on real models)."""
    source = tmp_path / "in.pubtator"
    write_pubtator_corpus(source, copies=4)
    out = tmp_path / "cli.jsonl"
    assert (
        bel(*link_args(linker_dir, source, out, "--batch-size", "5", "--top-k", "4", "--deterministic")).returncode == 0
    )
    outputs = [out.read_bytes()]
    for k, batch_size in enumerate([1, 3, 3]):
        outputs.append(
            link_file(
                linker, source, tmp_path / f"api{k}.jsonl", batch_size=batch_size, top_k=4, deterministic=True
            ).read_bytes()
        )
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]
    assert b'"score": ' in outputs[0]


@pytest.mark.slow  # 2 x 200 abstracts with tracemalloc on
def test_no_memory_kept_per_document(bert_tokenizer, tmp_path):
    """The Python heap stays flat while documents stream through (measured with the garbage collected: +130 to +180
    bytes per document, from transformers' forward); a leak of one document (or its record) per step keeps at least
    the document's text (~470 bytes) and its objects: +1,185 bytes per document measured. The RSS test in
    test_load.py cannot see a leak this small."""
    from bel import load_linker

    from .helpers import make_linker

    count = 200
    source = write_abstracts(tmp_path / "abstracts.txt", count, ALL_NAMES, sentences=4)
    text_bytes = sum(len(line) for line in source.read_text(encoding="utf-8").splitlines()) / count
    linker = load_linker(make_linker(bert_tokenizer, tmp_path / "model", mode="sentence"))
    link_file(linker, source, tmp_path / "warm-up.jsonl", batch_size=8, detect_mentions=True)  # caches filled
    recorder = RssRecorder(linker)
    tracemalloc.start()
    try:
        link_file(recorder, source, tmp_path / "linked.jsonl", batch_size=8, detect_mentions=True)
    finally:
        tracemalloc.stop()
    assert recorder.documents == count
    per_document = recorder.heap_bytes_per_document(after=count // 4)
    logging.getLogger(__name__).warning("Python heap: %+.0f bytes per document", per_document)
    assert per_document < text_bytes, (
        f"the Python heap grows {per_document:.0f} bytes per document (a document's text is {text_bytes:.0f} bytes)"
    )
