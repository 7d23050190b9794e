"""`bel link`: PubTator in and out with every mention kept, JSONL/txt, and the 2-process sharded run."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from bel.data.pubtator import read_pubtator

from .helpers import TWO_PROCESSES, bel, run


@pytest.mark.slow  # `bel link` in a fresh interpreter
def test_pubtator_in_pubtator_out_keeps_every_mention(corpus, tmp_path):
    model, source, count = corpus
    out = tmp_path / "out.pubtator"
    result = bel("link", str(model), str(source), "--output", str(out), "--batch-size", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    given, linked = read_pubtator(source), read_pubtator(out)
    assert [d.id for d in linked] == [d.id for d in given]
    assert sum(len(d.mentions) for d in linked) == count
    for a, b in zip(given, linked, strict=True):
        assert a.text == b.text
        assert [(m.start, m.end, m.text, m.type) for m in a.mentions] == [
            (m.start, m.end, m.text, m.type) for m in b.mentions
        ]
        assert all(m.ids and m.ids[0].startswith("MESH:") for m in b.mentions)
    assert not [p.name for p in tmp_path.iterdir() if p.name != "out.pubtator"]  # no work files left


@pytest.mark.slow  # `bel link` in a fresh interpreter
def test_jsonl_output_and_txt_input(corpus, tmp_path):
    model, _, _ = corpus
    text = tmp_path / "in.txt"
    text.write_text("Breast cancer and fever.\r\n\r\nKidney failure.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = bel("link", str(model), str(text), "--output", str(out), "--top-k", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["in.txt:1", "in.txt:3"]  # FILENAME:LINE (issue 15: ids were 1, 3)
    assert [m["text"] for m in records[0]["mentions"]] == ["Breast cancer", "fever"]
    assert records[0]["text"] == "Breast cancer and fever."
    assert all(len(m["candidates"]) <= 2 for r in records for m in r["mentions"])


@pytest.mark.slow  # a 2-process sharded `bel link`
def test_sharded_run_equals_single_process(corpus, tmp_path):
    model, source, _ = corpus
    single, sharded = tmp_path / "single.pubtator", tmp_path / "sharded.pubtator"
    assert bel("link", str(model), str(source), "--output", str(single)).returncode == 0
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    command = [
        accelerate,
        "launch",
        *TWO_PROCESSES,
        "-m",
        "bel",
        "--log-level",
        "WARNING",
        "link",
        str(model),
        str(source),
        "--output",
        str(sharded),
        "--no-progress",
    ]
    result = run(command, {**os.environ, "ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sharded.read_bytes() == single.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sharded.pubtator", "single.pubtator"]


@pytest.mark.slow  # `bel link` in a fresh interpreter
def test_bad_input_gives_a_clear_error(corpus, tmp_path):
    model, _, _ = corpus
    bad = tmp_path / "bad.pubtator"
    bad.write_text("1|t|Breast cancer.\n1|a|Fever.\n1\t0\t6\tBreast\tDisease\n1\t0\t99\tcancer\tDisease\tD1\n")
    result = bel("link", str(model), str(bad), "--output", str(tmp_path / "out.pubtator"))
    assert result.returncode == 2 and f"{bad}:4" in result.stderr
    assert not (tmp_path / "out.pubtator").exists()


@pytest.mark.parametrize("suffix", [".xml", ".json"])
def test_bioc_round_trip(corpus, tmp_path, suffix):
    from bel import load_linker
    from bel.data.bioc_io import read_bioc, write_bioc
    from bel.linking import link_file

    model, source, count = corpus
    bioc_in = tmp_path / f"in{suffix}"
    write_bioc(read_pubtator(source), bioc_in)
    out = link_file(load_linker(model), bioc_in, tmp_path / f"out{suffix}")
    linked = read_bioc(out)
    assert sum(len(d.mentions) for d in linked) == count
    assert all(m.ids for d in linked for m in d.mentions)
