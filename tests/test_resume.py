"""Issue 15, `bel link` side: run identity for resume, verified shards, one writer per output, per-record errors,
CLI path checks and `.txt` ids. In-process (tiny linker), so each runs in seconds."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading

import pytest

from bel.data.document import InvalidRecord
from bel.linking import (
    LinkSettings,
    OutputLockedError,
    is_disk_error,
    iter_documents,
    link_file,
    link_shard,
    merge_shards,
)

from .helpers import make_linker, write_pubtator_corpus

DOCUMENTS = 25  # write_pubtator_corpus(copies=5)


class Crash(RuntimeError):
    """Stands for a SIGKILL in the middle of a run."""


class Linker:
    """Wraps a pipeline: counts the documents it links, can crash after `crash_after` calls, block its first call until
    `release` is set, and refuse (as errors="collect" does) documents whose text contains `refuse`."""

    def __init__(self, pipeline, crash_after: int | None = None, refuse: str | None = None) -> None:
        self.pipeline, self.crash_after, self.refuse = pipeline, crash_after, refuse
        self.calls = self.documents = 0
        self.started, self.release = threading.Event(), None

    def __getattr__(self, name: str):
        return getattr(self.pipeline, name)

    def __call__(self, inputs, errors="raise", **kwargs):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise Crash("killed")
        self.calls += 1
        self.started.set()
        if self.release is not None:
            assert self.release.wait(60)
        refused = [bool(self.refuse) and self.refuse in item["text"] for item in inputs]
        linked = iter(self.pipeline([i for i, bad in zip(inputs, refused, strict=True) if not bad], **kwargs))
        self.documents += refused.count(False)
        return [{"error": "input 0: refused by the stand-in"} if bad else next(linked) for bad in refused]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "in.pubtator"
    write_pubtator_corpus(path, copies=5)
    return path


@pytest.fixture(scope="module")
def reference(linker, source, tmp_path_factory):
    return link_file(linker, source, tmp_path_factory.mktemp("reference") / "ref.jsonl").read_bytes()


def crashed_run(pipeline, source, out, calls: int = 2, **options) -> dict:
    """A run killed after `calls` batches of 4; returns its progress record."""
    with pytest.raises(Crash):
        link_file(Linker(pipeline, crash_after=calls), source, out, batch_size=4, **options)
    state = json.loads(out.with_name(out.name + ".part-0-of-1.jsonl.progress.json").read_text())
    assert state["documents"] == 4 * calls and not out.exists()
    return state


# ------------------------------------------------------------------------------------------------ resume
def test_resume_links_only_what_is_left(linker, source, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    crashed_run(linker, source, out, calls=3)
    rerun = Linker(linker)
    link_file(rerun, source, out, batch_size=5)  # another batch size: not part of the identity
    assert rerun.documents == DOCUMENTS - 12  # resumed after the 12 documents done, none relinked
    assert out.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_resume_with_another_checkpoint_is_refused(bert_tokenizer, linker, source, tmp_path):
    from bel import load_linker

    other = load_linker(make_linker(bert_tokenizer, tmp_path / "other", seed=1))
    out = tmp_path / "out.jsonl"
    crashed_run(linker, source, out)
    with pytest.raises(ValueError, match=r"checkpoint differs .*--overwrite") as refused:
        link_file(Linker(other), source, out)
    assert "8 documents linked" in str(refused.value) and not out.exists()
    fresh = Linker(other)
    link_file(fresh, source, out, overwrite=True)
    assert fresh.documents == DOCUMENTS
    assert out.read_bytes() == link_file(other, source, tmp_path / "solo.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("option", "message"),
    [({"top_k": 2}, "top_k was 5, now 2"), ({"output_format": "pubtator"}, "output_format was 'jsonl'")],
)
def test_resume_with_other_options_is_refused(linker, source, tmp_path, option, message):
    out = tmp_path / "out.jsonl"
    crashed_run(linker, source, out)
    with pytest.raises(ValueError, match=message):
        link_file(linker, source, out, **option)


def test_input_changed_inside_the_done_part_is_refused(linker, source, tmp_path):
    copy = tmp_path / "in.pubtator"
    copy.write_text(source.read_text().replace("Heart failure and renal failure.", "Heart failure and renal FAILURE."))
    out = tmp_path / "out.jsonl"
    crashed_run(linker, source, out)
    with pytest.raises(ValueError, match=r"the first \d+ documents of .* differ"):
        link_file(linker, copy, out)


def test_input_changed_after_the_done_part_resumes(linker, source, tmp_path):
    out = tmp_path / "out.jsonl"
    crashed_run(linker, source, out, calls=2)  # 8 documents done
    edited = tmp_path / "edited.pubtator"
    blocks = source.read_text().split("\n\n")
    blocks[24] = blocks[24].replace("Breast carcinoma.", "Breast carcinoma!")  # the last document: after the prefix
    blocks.insert(-1, "7|t|Fever.\n7|a|And rash.")  # one more document
    edited.write_text("\n\n".join(blocks))
    rerun = Linker(linker)
    link_file(rerun, edited, out)
    assert rerun.documents == DOCUMENTS + 1 - 8
    assert out.read_bytes() == link_file(linker, edited, tmp_path / "solo.jsonl").read_bytes()


# ------------------------------------------------------------------------------------------------ verified shards
def settings_for(source, out) -> LinkSettings:
    return LinkSettings(model="", input=source, output=out, input_format="pubtator", output_format="jsonl")


def test_finished_shard_missing_its_last_line_is_redone(linker, source, reference, tmp_path, caplog):
    out = tmp_path / "out.jsonl"
    settings = settings_for(source, out)
    work = link_shard(linker, settings, progress=False)
    work.write_bytes(work.read_bytes().rsplit(b"\n", 2)[0] + b"\n")  # a finished shard loses its last record
    with pytest.raises(RuntimeError, match="shorter"):
        merge_shards(settings, 1)  # without a linker to redo it: refused, never merged short
    assert not out.exists()
    with caplog.at_level(logging.WARNING, logger="bel.linking"):
        merge_shards(settings, 1, linker=linker)
    assert "redoing this shard" in caplog.text
    assert out.read_bytes() == reference


def test_altered_work_file_is_redone_on_resume(linker, source, reference, tmp_path, caplog):
    out = tmp_path / "out.jsonl"
    crashed_run(linker, source, out, calls=2)
    work = tmp_path / "out.jsonl.part-0-of-1.jsonl"
    work.write_bytes(work.read_bytes().replace(b'"score": 0.', b'"score": 1.', 1))
    rerun = Linker(linker)
    with caplog.at_level(logging.WARNING, logger="bel.linking"):
        link_file(rerun, source, out)
    assert "does not match its recorded sha256" in caplog.text
    assert rerun.documents == DOCUMENTS  # redone from the start
    assert out.read_bytes() == reference


# ------------------------------------------------------------------------------------------------ atomic output
def test_crash_while_merging_leaves_the_old_output_whole(linker, source, reference, tmp_path, monkeypatch):
    import bel.linking

    out = tmp_path / "out.jsonl"
    out.write_text("the previous, complete output\n")
    real, written = bel.linking.format_record, []

    def crash_at_ten(record, fmt):
        if len(written) == 10:
            raise Crash("killed while merging")
        written.append(record)
        return real(record, fmt)

    monkeypatch.setattr(bel.linking, "format_record", crash_at_ten)
    with pytest.raises(Crash):
        link_file(linker, source, out)
    assert out.read_text() == "the previous, complete output\n"  # never half-written
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    monkeypatch.setattr(bel.linking, "format_record", real)
    rerun = Linker(linker)
    link_file(rerun, source, out)
    assert rerun.documents == 0  # the shard was complete: only the merge is redone
    assert out.read_bytes() == reference


# ------------------------------------------------------------------------------------------------ one writer
def test_second_writer_on_the_same_output_is_refused(linker, source, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    first = Linker(linker)
    first.release = threading.Event()
    failures = []

    def run_first():
        try:
            link_file(first, source, out)
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert first.started.wait(60)
        with pytest.raises(OutputLockedError, match=rf"PID {os.getpid()}, holding the lock {out}\.lock"):
            link_file(linker, source, out)
    finally:
        first.release.set()
        thread.join(120)
    assert not failures
    assert out.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # lock files removed


def test_stale_lock_file_is_recovered(linker, source, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.lock").write_text("999999\n")  # left by a killed process: nobody holds it
    link_file(linker, source, out)
    assert out.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


# ------------------------------------------------------------------------------------------------ bad records
def bad_txt(path):
    path.write_bytes(b"Breast cancer.\nFever \xff here.\nKidney failure.\nPMID42\tOvarian cancer.\n")
    return path


def test_unreadable_record_stops_with_its_location_and_resumes_after_the_fix(linker, tmp_path):
    source, out = bad_txt(tmp_path / "in.txt"), tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=rf"{source}:2: not valid UTF-8.*1 documents before it are linked"):
        link_file(linker, source, out, batch_size=8)
    source.write_bytes(source.read_bytes().replace(b"\xff", b"and"))
    rerun = Linker(linker)
    link_file(rerun, source, out)
    assert rerun.documents == 3
    assert out.read_bytes() == link_file(linker, source, tmp_path / "solo.jsonl").read_bytes()


def test_skipped_records_go_to_the_errors_file(linker, tmp_path, caplog):
    source, out = bad_txt(tmp_path / "in.txt"), tmp_path / "out.jsonl"
    stand_in = Linker(linker, refuse="Kidney")
    with caplog.at_level(logging.WARNING, logger="bel.linking"):
        link_file(stand_in, source, out, on_error="skip")
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["in.txt:1", "PMID42"]
    errors = [json.loads(line) for line in (tmp_path / "out.jsonl.errors.jsonl").read_text().splitlines()]
    assert [(e["index"], e["location"]) for e in errors] == [
        (1, f"{source}:2"),
        (2, f"{source}: document 2 (counted from 0, id 'in.txt:3')"),
    ]
    assert "not valid UTF-8" in errors[0]["message"] and "refused by the stand-in" in errors[1]["message"]
    assert "2 bad input records were skipped" in caplog.text and "out.jsonl.errors.jsonl" in caplog.text


def test_refused_document_stops_and_keeps_the_documents_before_it(linker, tmp_path):
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("Breast cancer.\nFever.\nKidney failure.\nRash.\n")
    with pytest.raises(ValueError, match=r"document 2 \(counted from 0, id 'in.txt:3'\): the pipeline refused"):
        link_file(Linker(linker, refuse="Kidney"), source, out, batch_size=8)
    state = json.loads((tmp_path / "out.jsonl.part-0-of-1.jsonl.progress.json").read_text())
    assert state["documents"] == 2 and not out.exists()


# ------------------------------------------------------------------------------------------------ .txt ids
def test_txt_lines_keep_an_id(tmp_path):
    source = tmp_path / "abstracts.txt"
    source.write_text("PMID1\tBreast cancer.\n\nno id here\tbut a tab\nplain line\n")
    docs = list(iter_documents(source, "txt"))
    assert [(d.id, d.text) for d in docs] == [
        ("PMID1", "Breast cancer."),
        ("abstracts.txt:3", "no id here\tbut a tab"),
        ("abstracts.txt:4", "plain line"),
    ]
    assert [d.id for d in iter_documents(source, "txt", txt_mode="file")] == ["abstracts"]


def test_txt_reader_collects_a_bad_line(tmp_path):
    source = bad_txt(tmp_path / "in.txt")
    items = list(iter_documents(source, "txt", errors="collect"))
    assert isinstance(items[1], InvalidRecord) and items[1].location == f"{source}:2"
    assert [d.id for d in items if not isinstance(d, InvalidRecord)] == ["in.txt:1", "in.txt:3", "PMID42"]


# ------------------------------------------------------------------------------------------------ CLI checks
@pytest.fixture
def no_model_load(monkeypatch):
    import bel.saving

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the paths were checked")

    monkeypatch.setattr(bel.saving, "load_linker", refuse)


CLI_CASES = {
    "missing model": (lambda t: ["link", str(t / "nope" / "model"), str(t / "in.txt")], "does not exist"),
    "model is a file": (lambda t: ["link", str(t / "in.txt"), str(t / "in.txt")], "is a file"),
    "missing input": (lambda t: ["link", "{model}", str(t / "missing.txt")], "input file .* does not exist"),
    "output is a directory": (lambda t: ["link", "{model}", str(t / "in.txt"), "--output", str(t)], "is a directory"),
    "output is the input": (
        lambda t: ["link", "{model}", str(t / "in.txt"), "--output", str(t / "." / "in.txt")],
        "is the input file",
    ),
    "output is a hard link to the input": (
        lambda t: ["link", "{model}", str(t / "in.txt"), "--output", str(t / "hard.txt")],
        "is the input file",
    ),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_path_mistakes_are_one_line_errors(case, linker_dir, tmp_path, capsys, no_model_load):
    from bel.cli import main

    (tmp_path / "in.txt").write_text("Breast cancer.\n")
    os.link(tmp_path / "in.txt", tmp_path / "hard.txt")
    arguments, message = CLI_CASES[case]
    argv = [a.replace("{model}", str(linker_dir)) for a in arguments(tmp_path)]
    if "--output" not in argv:
        argv += ["--output", str(tmp_path / "out.jsonl")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bel link: error: ")
    assert __import__("re").search(message, err[0]), err[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_cli_unwritable_output_directory(linker_dir, tmp_path, capsys, no_model_load):
    from bel.cli import main

    (tmp_path / "in.txt").write_text("Breast cancer.\n")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["link", str(linker_dir), str(tmp_path / "in.txt"), "--output", str(locked / "o.jsonl")]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_cli_threads_and_no_progress(linker_dir, tmp_path, capsys, monkeypatch):
    import torch

    import bel.linking
    from bel.cli import main

    (tmp_path / "in.txt").write_text("PMID7\tBreast cancer and fever.\n")
    seen, link_shard = [], bel.linking.link_shard

    def recording_link_shard(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return link_shard(*args, **kwargs)

    monkeypatch.setattr(bel.linking, "link_shard", recording_link_shard)
    torch.set_num_threads(2)
    out = tmp_path / "out.jsonl"
    assert main(["link", str(linker_dir), str(tmp_path / "in.txt"), "--output", str(out), "--threads", "1",
                 "--no-progress"]) == 0  # fmt: skip
    assert seen == [1]  # linked with one thread ...
    assert torch.get_num_threads() == 2  # ... and the caller's setting is back afterwards
    assert "linking" not in capsys.readouterr().err  # no progress bar
    assert json.loads(out.read_text())["id"] == "PMID7"


CROSSING = (  # document 1: a mention across the title/abstract boundary, which the pipeline refuses
    "1|t|Fever.\n1|a|Rash.\n1\t0\t5\tFever\tDisease\tD1\n\n"
    "2|t|Breast cancer.\n2|a|Fever.\n2\t7\t20\tcancer. Fever\tDisease\tD1\n\n"
    "3|t|Rash.\n3|a|Fever.\n3\t0\t4\tRash\tDisease\tD1\n\n"
)


def test_cli_on_error_with_a_document_the_pipeline_refuses(linker_dir, tmp_path, capsys):
    from bel.cli import main

    source, out = tmp_path / "in.pubtator", tmp_path / "out.pubtator"
    source.write_text(CROSSING)
    arguments = ["link", str(linker_dir), str(source), "--output", str(out), "--no-progress"]
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert f"bel link: error: {source}: document 1 (counted from 0, id '2'): the pipeline refused it" in err
    assert "not inside one passage" in err and "1 documents before it are linked and kept" in err
    assert not out.exists()
    assert main([*arguments, "--on-error", "skip"]) == 0  # resumes at the refused document
    assert [line.split("|")[0] for line in out.read_text().splitlines() if "|t|" in line] == ["1", "3"]
    (error,) = [json.loads(line) for line in (tmp_path / "out.pubtator.errors.jsonl").read_text().splitlines()]
    assert (error["index"], error["id"]) == (1, "2") and "passage" in error["message"]


# ------------------------------------------------------------------------------------------------ disk full
@pytest.mark.parametrize("failing_call", [2, 6, 9])  # each batch fsyncs its work file, then its progress
def test_disk_full_then_rerun_gives_the_same_bytes(linker, source, reference, tmp_path, monkeypatch, failing_call):
    """A full disk (an fsync failing with ENOSPC, as on a full file system, after data was written past the last
    recorded batch) stops the run with its progress kept; the rerun resumes to the bytes of an uninterrupted run."""
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
