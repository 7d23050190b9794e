"""`bel link` on a disk that fills up: the run stops with the progress kept, and the rerun (space freed) resumes to the
same bytes as an uninterrupted run. The disk is simulated by an fsync that fails with ENOSPC, as it does on a full
file system, after data has already been written past the last recorded batch."""

from __future__ import annotations

import errno
import json
import os

import pytest

from bel.linking import is_disk_error, link_file

from .helpers import write_pubtator_corpus
from .test_resume import Linker


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("disk_full") / "in.pubtator"
    write_pubtator_corpus(path, copies=5)
    return path


@pytest.fixture(scope="module")
def reference(linker, source, tmp_path_factory) -> bytes:
    return link_file(linker, source, tmp_path_factory.mktemp("reference") / "ref.jsonl", batch_size=4).read_bytes()


@pytest.mark.parametrize("failing_call", [2, 6, 9])  # each batch fsyncs its work file, then its progress
def test_disk_full_then_rerun_gives_the_same_bytes(linker, source, reference, tmp_path, monkeypatch, failing_call):
    real_fsync, calls = os.fsync, []

    def full_disk_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == failing_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(os, "fsync", full_disk_fsync)
    with pytest.raises(OSError) as raised:
        link_file(linker, source, out, batch_size=4)
    assert is_disk_error(raised.value) and not out.exists()
    monkeypatch.setattr(os, "fsync", real_fsync)
    progress = out.with_name(out.name + ".part-0-of-1.jsonl.progress.json")
    recorded = json.loads(progress.read_text())["documents"] if progress.exists() else 0
    assert recorded > 0 or failing_call <= 3  # from the third batch on, earlier batches were recorded
    rerun = Linker(linker)
    link_file(rerun, source, out, batch_size=4)
    assert out.read_bytes() == reference
    assert rerun.documents == 25 - recorded  # resumed after them: none linked twice, none lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
