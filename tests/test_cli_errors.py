"""The `bel` entry points under user mistakes and real use: one-line errors (exit 2; other OSError exit 1; Ctrl-C 130;
`--debug` for the traceback), model paths and `--output` checked before any work, safetensors-only loading at every
entry point, corrupt weights named, a KB swap that is used (never ignored), output JSON naming the files it read, and
`--threads` / `--no-progress`. Tiny checkpoints only (tests/helpers.py); commands run in-process through `bel.cli.main`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from bel.cli import build_parser, main

from .helpers import KB, make_linker

# an entry point that loads a model, given the model path: the argv of each
ENTRY_POINTS = {
    "eval": lambda model: ["eval", model],
    "bench": lambda model: ["bench", "--model", model],
    "train": lambda model: ["train", "--init-from", model],
    "push": lambda model: ["push", model, "user/bel-tiny"],
}


@pytest.fixture(scope="module")
def checkpoint(bert_tokenizer, tmp_path_factory) -> Path:
    """A tiny saved linker (helpers.KB, MESH ids) that tests copy before damaging."""
    return make_linker(bert_tokenizer, tmp_path_factory.mktemp("cli_errors") / "checkpoint")


def _copy(checkpoint: Path, target: Path) -> Path:
    return Path(shutil.copytree(checkpoint, target))


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _no_model_work(monkeypatch) -> None:
    """Fail the test if a model or corpus is loaded (the checks must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("model or corpus loaded before the argument checks")

    import bel.examples
    import bel.saving

    monkeypatch.setattr(bel.saving, "load_components", refuse)
    monkeypatch.setattr(bel.examples, "load_documents", refuse)
    monkeypatch.setattr(bel.examples, "load_knowledge_base", refuse)


# ------------------------------------------------------------------------------------------------ error reporting
def test_user_error_is_one_line_with_exit_2_and_debug_reraises(tmp_path, capsys):
    missing = str(tmp_path / "no-such-model")
    code, err = _run(["eval", missing], capsys)
    assert code == 2
    assert err.startswith(f"bel eval: error: model directory {missing} does not exist")
    assert "(run with --debug for the traceback)" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the message and the hint
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["eval", missing, "--debug"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["--debug", "eval", missing])  # before the subcommand too


def test_every_subcommand_accepts_debug():
    parser = build_parser()
    argv = {"eval": ["eval", "m"], "link": ["link", "m", "in.txt", "--output", "o.jsonl"], "push": ["push", "d", "r"]}
    for name in ("train", "eval", "bench", "link", "demo", "push"):
        assert parser.parse_args([*argv.get(name, [name]), "--debug"]).debug is True
        assert parser.parse_args(argv.get(name, [name])).debug is False


@pytest.mark.parametrize(
    ("raised", "code", "text"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "out.json"), 1, "No space left on device"),
        (OSError(errno.EROFS, "Read-only file system", "out.json"), 1, "Read-only file system"),
        (PermissionError(errno.EACCES, "Permission denied", "out.json"), 2, "Permission denied"),
        (ValueError("bad record at corpus.txt:3"), 2, "bad record at corpus.txt:3"),
    ],
)
def test_environment_errors_exit_1_user_errors_exit_2(raised, code, text, monkeypatch, capsys):
    import bel.commands.eval

    def fail(args):
        raise raised

    monkeypatch.setattr(bel.commands.eval, "run", fail)
    returned, err = _run(["eval", "model"], capsys)
    assert returned == code and err.startswith("bel eval: error: ") and text in err and "Traceback" not in err


def test_interrupt_exits_130_and_a_bug_keeps_its_traceback(monkeypatch, capsys):
    import bel.commands.eval

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(bel.commands.eval, "run", interrupted)
    code, err = _run(["eval", "model"], capsys)
    assert code == 130 and "interrupted" in err

    def bug(args):
        raise KeyError("a real bug")

    monkeypatch.setattr(bel.commands.eval, "run", bug)
    with pytest.raises(KeyError):
        main(["eval", "model"])


def test_bad_log_level_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--log-level", "LOUD", "demo"])
    assert exited.value.code == 2 and "unknown level 'LOUD'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ model paths
@pytest.mark.parametrize("command", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("missing", "does not exist"),
        ("file", "is a file, not a checkpoint directory"),
        ("empty", "no config.json"),
        ("no-weights", "has no model.safetensors"),
        ("pickle-only", "holds weights only as pickle (pytorch_model.bin)"),
    ],
)
def test_bad_model_path_is_refused_before_any_work(
    command, damage, expected, checkpoint, tmp_path, monkeypatch, capsys
):
    model = tmp_path / "model"
    if damage == "file":
        model.write_text("not a model")
    elif damage == "empty":
        model.mkdir()
    elif damage in ("no-weights", "pickle-only"):
        _copy(checkpoint, model)
        if damage == "pickle-only":
            _to_pickle_only(model)
        else:
            (model / "model.safetensors").unlink()
    _no_model_work(monkeypatch)
    code, err = _run(ENTRY_POINTS[command](str(model)), capsys)
    assert code == 2, err
    assert f"bel {command}: error: " in err and str(model) in err and expected in err
    assert "bel.save_linker" in err or "save_pretrained" in err  # says what is expected / how to convert


def _to_pickle_only(directory: Path) -> None:
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(directory / "model.safetensors"), directory / "pytorch_model.bin")
    (directory / "model.safetensors").unlink()


def test_pickle_only_checkpoint_refused_by_every_loader(checkpoint, tmp_path):
    from bel.saving import load_components, load_linker

    model = _copy(checkpoint, tmp_path / "model")
    _to_pickle_only(model)
    for loader in (load_components, load_linker):
        with pytest.raises(ValueError, match=r"pytorch_model\.bin.*save_pretrained"):
            loader(model)


def test_safetensors_beside_pickle_that_is_not_the_model_is_refused(checkpoint, tmp_path):
    """Any `*.safetensors` used to pass the check (an adapter, a detector's weights copied to the top level)."""
    from bel.saving import load_components

    model = _copy(checkpoint, tmp_path / "model")
    _to_pickle_only(model)
    (model / "adapter.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="pickle"):
        load_components(model)


@pytest.mark.parametrize("keep", [0.5, 0.01])
def test_truncated_weights_are_named(keep, checkpoint, tmp_path, capsys):
    model = _copy(checkpoint, tmp_path / "model")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: max(1, int(len(data) * keep))])
    corpus, kb = _swap_files(tmp_path)
    code, err = _run(["eval", str(model), "--corpus-file", str(corpus), "--kb-file", str(kb)], capsys)
    assert code == 2 and f"{weights} cannot be read" in err and "truncated or corrupt" in err


def test_missing_local_path_for_load_linker_is_named(tmp_path):
    from bel.saving import load_linker

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_linker(tmp_path / "runs" / "missing" / "linker")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_linker(tmp_path / "weights.bin")


# ------------------------------------------------------------------------------------------------ --output
@pytest.mark.parametrize("command", ["eval", "bench"])
def test_output_that_is_a_directory_fails_before_any_work(command, checkpoint, tmp_path, monkeypatch, capsys):
    argv = ENTRY_POINTS[command](str(checkpoint))
    (tmp_path / "out").mkdir()
    _no_model_work(monkeypatch)
    code, err = _run([*argv, "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and f"--output {tmp_path / 'out'} is a directory" in err
    (tmp_path / "file").write_text("")
    code, err = _run([*argv, "--output", str(tmp_path / "file" / "sub" / "r.json")], capsys)
    assert code == 2 and f"{tmp_path / 'file'} is a file, not a folder" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_folder_fails_before_any_work(checkpoint, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        _no_model_work(monkeypatch)
        code, err = _run(["eval", str(checkpoint), "--output", str(folder / "r.json")], capsys)
    finally:
        folder.chmod(0o700)
    assert code == 2 and "is not writable" in err


def test_predictions_path_is_checked_too(checkpoint, tmp_path, monkeypatch, capsys):
    _no_model_work(monkeypatch)
    code, err = _run(["eval", str(checkpoint), "--predictions", str(tmp_path)], capsys)
    assert code == 2 and "--predictions" in err and "is a directory" in err


# ------------------------------------------------------------------------------------------------ KB swap
OTHER_IDS = {entity_id: f"HP:{k:07d}" for k, (entity_id, _, _) in enumerate(KB)}
SENTENCE = "Varicella is a viral infection with fever and rash."
GOLD = {"Varicella": "MESH:D002644", "viral infection": "MESH:D014777", "fever": "MESH:D005334", "rash": "MESH:D005076"}


def _write_kb(path: Path, ids: dict[str, str] | None = None) -> Path:
    lines = ["id\tname\tsynonyms"]
    lines += [f"{(ids or {}).get(i, i)}\t{name}\t{'|'.join(synonyms)}" for i, name, synonyms in KB]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_corpus(path: Path, ids: dict[str, str] | None = None) -> Path:
    lines = [f"1|t|{SENTENCE}", "1|a|"]
    for text, entity_id in GOLD.items():
        start = SENTENCE.index(text)
        lines.append(f"1\t{start}\t{start + len(text)}\t{text}\tDisease\t{(ids or {}).get(entity_id, entity_id)}")
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


def _swap_files(tmp_path: Path) -> tuple[Path, Path]:
    """A corpus and a KB of another ontology: the same names under other ids (HP:...)."""
    return _write_corpus(tmp_path / "other.pubtator", OTHER_IDS), _write_kb(tmp_path / "other_kb.tsv", OTHER_IDS)


def test_eval_with_another_kb_rebuilds_the_retriever_and_says_so(checkpoint, tmp_path, caplog):
    corpus, kb = _swap_files(tmp_path)
    out = tmp_path / "result.json"
    with caplog.at_level(logging.INFO):
        assert (
            main(["eval", str(checkpoint), "--corpus-file", str(corpus), "--kb-file", str(kb), "--output", str(out)])
            == 0
        )
    result = json.loads(out.read_text())
    assert result["retriever"] == "rebuilt"
    assert result["gold_not_in_kb"] == 0
    # the checkpoint's retriever only knows MESH ids: every gold HP id would be missed (recall 0) if it were kept
    assert result["retriever_recall"]["5"] == 1.0
    assert f"rebuilding the retriever from KB {kb.resolve()} ({len(KB)} entities)" in caplog.text
    assert "training aliases" in caplog.text


def test_eval_with_the_checkpoints_own_kb_keeps_its_retriever(checkpoint, tmp_path):
    corpus, kb = _write_corpus(tmp_path / "c.pubtator"), _write_kb(tmp_path / "same_kb.tsv")
    out = tmp_path / "result.json"
    assert (
        main(["eval", str(checkpoint), "--corpus-file", str(corpus), "--kb-file", str(kb), "--output", str(out)]) == 0
    )
    result = json.loads(out.read_text())
    assert result["retriever"] == "checkpoint" and result["retriever_recall"]["5"] == 1.0


def test_load_linker_with_kb_file_links_to_the_new_kb(checkpoint, tmp_path, caplog):
    from bel.saving import load_linker

    _, kb = _swap_files(tmp_path)
    with caplog.at_level(logging.INFO):
        linker = load_linker(checkpoint, kb_file=kb)
    assert "rebuilding the retriever" in caplog.text
    assert linker.retriever.entity_ids() == sorted(OTHER_IDS.values())
    linked = {m["text"]: m["entity_id"] for m in linker({"text": SENTENCE, "mentions": _spans()})}
    assert set(linked.values()) <= set(OTHER_IDS.values()) and len(linked) == len(GOLD)
    with pytest.raises(ValueError, match="not both"):
        load_linker(checkpoint, kb_file=kb, retriever=linker.retriever)


def test_link_with_another_kb_links_to_it_and_resume_checks_the_kb(checkpoint, tmp_path, caplog, capsys):
    corpus, kb = _swap_files(tmp_path)
    out = tmp_path / "linked.jsonl"
    with caplog.at_level(logging.INFO):
        assert main(["link", str(checkpoint), str(corpus), "--output", str(out), "--kb-file", str(kb)]) == 0
    assert "rebuilding the retriever" in caplog.text
    (record,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(record["mentions"]) == len(GOLD)
    assert {m["entity_id"] for m in record["mentions"]} <= set(OTHER_IDS.values())
    # a partial run made with this KB (linked, not merged) is not resumed by a rerun without it
    from bel.linking import LinkSettings, link_shard, prepare_run
    from bel.saving import load_linker

    partial = tmp_path / "partial.jsonl"
    settings = LinkSettings(str(checkpoint), corpus, partial, "pubtator", "jsonl", kb_file=kb)
    settings.resolve_checkpoint()
    prepare_run(settings, 0, 1, overwrite=False)
    link_shard(load_linker(checkpoint, kb_file=kb), settings, progress=False)
    assert main(["link", str(checkpoint), str(corpus), "--output", str(partial)]) == 2
    assert "kb_file" in capsys.readouterr().err
    assert not partial.exists()


def test_rebuilt_retriever_keeps_the_checkpoints_settings(checkpoint, tmp_path):
    from bel.kb import KnowledgeBase
    from bel.saving import retriever_for_kb

    model = _copy(checkpoint, tmp_path / "model")
    config_file = model / "retriever" / "retriever_config.json"
    config = json.loads(config_file.read_text())
    config.update(ngram_range=[2, 5], max_df=0.5)
    config_file.write_text(json.dumps(config))
    kb = KnowledgeBase.load(_write_kb(tmp_path / "other_kb.tsv", OTHER_IDS))
    rebuilt = retriever_for_kb(model, kb)
    assert rebuilt.ngram_range == (2, 5) and rebuilt.max_df == 0.5


def _spans() -> list[dict]:
    return [{"start": SENTENCE.index(t), "end": SENTENCE.index(t) + len(t)} for t in GOLD]


def test_pipeline_uses_a_retriever_given_to_it(checkpoint, hf_home):
    """`pipeline("entity-linking", model=dir, retriever=CandidateRetriever.build(...))` swaps the KB."""
    from transformers import pipeline

    from bel.retrieval_bel import CandidateRetriever

    rows = [(OTHER_IDS[i], n) for i, name, synonyms in KB for n in (name, *synonyms)]
    retriever = CandidateRetriever.build([r[0] for r in rows], [r[1] for r in rows])
    linker = pipeline("entity-linking", model=str(checkpoint), trust_remote_code=True, retriever=retriever)
    assert linker.retriever is retriever
    linked = linker({"text": SENTENCE, "mentions": _spans()})
    assert {m["entity_id"] for m in linked} <= set(OTHER_IDS.values())


# ------------------------------------------------------------------------------------------------ output JSON
def test_eval_json_names_corpus_and_kb_files(checkpoint, tmp_path):
    data = tmp_path / "data" / "ncbi_disease"
    data.mkdir(parents=True)
    for split in ("train", "test"):
        _write_corpus(data / f"NCBI{split}set_corpus.txt")
    medic = data / "medic_06Jul2012.txt"
    medic.write_text("".join(f"{i.removeprefix('MESH:')}||{n}|{'|'.join(s)}\n" for i, n, s in KB[:-1]))
    out = tmp_path / "r.json"
    assert main(["eval", str(checkpoint), "--data-dir", str(tmp_path / "data"), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["corpus_files"] == [str((data / "NCBItestset_corpus.txt").resolve())]
    assert result["kb_file"] == str(medic.resolve())
    # this KB lacks one entity of the checkpoint's: rebuilt, with the dataset's training mentions as aliases
    assert result["retriever"] == "rebuilt"
    assert result["alias_corpus_files"] == [str((data / "NCBItrainset_corpus.txt").resolve())]
    for key in ("acc@1", "acc@5", "mrr", "retriever_recall", "dataset", "split", "model", "documents"):
        assert key in result
    corpus, kb = _swap_files(tmp_path)
    assert (
        main(["eval", "--retriever-only", "--corpus-file", str(corpus), "--kb-file", str(kb), "--output", str(out)])
        == 0
    )
    result = json.loads(out.read_text())
    assert result["corpus_files"] == [str(corpus.resolve())] and result["kb_file"] == str(kb.resolve())


# ------------------------------------------------------------------------------------------------ runtime options
def test_eval_no_progress_silences_the_weight_loading_bar(checkpoint, tmp_path, capsys):
    corpus, kb = _write_corpus(tmp_path / "c.pubtator"), _write_kb(tmp_path / "kb.tsv")
    argv = [
        "eval",
        str(checkpoint),
        "--corpus-file",
        str(corpus),
        "--kb-file",
        str(kb),
        "--output",
        str(tmp_path / "r.json"),
    ]
    assert main(argv) == 0
    assert "Loading weights" in capsys.readouterr().err  # the bar this option hides
    assert main([*argv, "--no-progress", "--threads", "1"]) == 0
    assert "Loading weights" not in capsys.readouterr().err
    assert main(argv) == 0  # restored after the command
    assert "Loading weights" in capsys.readouterr().err


def test_runtime_sets_and_restores_threads():
    import argparse

    import torch

    from bel.commands.options import runtime

    before = torch.get_num_threads()
    with runtime(argparse.Namespace(threads=1, no_progress=True)):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    parser = build_parser()
    for argv in (["eval", "m"], ["bench"]):
        args = parser.parse_args([*argv, "--threads", "2", "--no-progress"])
        assert (args.threads, args.no_progress) == (2, True)


def test_bench_json_names_its_files_and_rebuilds_for_another_kb(checkpoint, tmp_path):
    corpus, kb = _swap_files(tmp_path)
    out = tmp_path / "bench.json"
    argv = ["bench", "--model", str(checkpoint), "--corpus-file", str(corpus), "--kb-file", str(kb)]
    argv += ["--num-candidates", "4", "--modes", "mention", "--templates", "compact", "--max-documents", "1"]
    argv += ["--repeats", "1", "--packed-sweep", "512", "--pair-sweep", "512", "--train-documents", "1"]
    assert main([*argv, "--no-progress", "--output", str(out)]) == 0
    settings = json.loads(out.read_text())["settings"]
    assert settings["corpus_files"] == [str(corpus.resolve())] and settings["kb_file"] == str(kb.resolve())
    assert settings["retriever"] == "rebuilt"
