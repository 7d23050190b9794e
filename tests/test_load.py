"""Load: `bel link` over 5,000 generated abstracts in one process keeps resident memory flat."""

from __future__ import annotations

import logging

import pytest

from bel import load_linker
from bel.linking import link_file
from bel.soak import RssRecorder, write_abstracts

from .helpers import ALL_NAMES, make_linker

pytestmark = pytest.mark.slow  # a 5,000-abstract soak
logger = logging.getLogger(__name__)


def test_linking_5000_abstracts_keeps_memory_flat(bert_tokenizer, tmp_path):
    directory = make_linker(bert_tokenizer, tmp_path / "model", mode="sentence")
    source = write_abstracts(tmp_path / "abstracts.txt", 5000, ALL_NAMES, sentences=4)
    recorder = RssRecorder(load_linker(directory))
    output = link_file(recorder, source, tmp_path / "linked.jsonl", batch_size=32, detect_mentions=True)
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5000
    assert recorder.documents == 5000
    first, last, growth = recorder.growth(window=1000)
    seconds = recorder.samples[-1][2]
    logger.warning(
        "5,000 abstracts: %.0f docs/s; RSS %.0f MB -> %.0f MB (%+.1f%%)", 5000 / seconds, first, last, 100 * growth
    )
    assert growth < 0.10, f"resident memory grew {100 * growth:.1f}% ({first:.0f} -> {last:.0f} MB)"
