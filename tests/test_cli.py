"""The `bel` command line's parsing: every `--help`, and bad values rejected by argparse (exit code 2) before any
model or corpus is loaded. Nothing here loads a model or touches the network."""

from __future__ import annotations

import argparse

import pytest

from bel.cli import SUBCOMMANDS, build_parser, main
from bel.configuration_bel import PACKING_MODES, TEMPLATES
from bel.data.datasets import DATASETS, SPLITS


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


@pytest.mark.parametrize("command", [[], *([name] for name in SUBCOMMANDS)])
def test_every_help_exits_zero(command, capsys):
    assert _exit_code([*command, "--help"]) == 0
    assert "usage: bel" in capsys.readouterr().out


def test_no_subcommand_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "bad", "valid"),
    [
        (["bench", "--modes", "pair,bogus"], "bogus", PACKING_MODES),
        (["bench", "--modes", "pair", "bogus"], "bogus", PACKING_MODES),
        (["bench", "--templates", "paper,fancy"], "fancy", TEMPLATES),
        (["bench", "--dataset", "nope"], "nope", DATASETS),
        (["eval", "--dataset", "nope"], "nope", DATASETS),
        (["eval", "--split", "validation"], "validation", SPLITS),
        (["eval", "--mode", "nope"], "nope", PACKING_MODES),
        (["eval", "--template", "nope"], "nope", TEMPLATES),
        (["demo", "--mode", "nope"], "nope", PACKING_MODES),
        (["demo", "--dataset", "nope"], "nope", DATASETS),
        (["train", "--mode", "nope"], "nope", PACKING_MODES),
        (["train", "--dataset", "nope"], "nope", DATASETS),
        (["train", "--detector-context", "sentence"], "sentence", ("passage", "document")),
    ],
)
def test_bad_choice_is_a_usage_error_naming_the_valid_values(argv, bad, valid, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "usage: bel" in err and f"invalid choice: '{bad}'" in err
    assert all(value in err for value in valid)


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--num-candidates", "-3"],
        ["eval", "--num-candidates", "many"],
        ["eval", "--max-documents", "0"],
        ["eval", "--max-tokens", "-1"],
        ["bench", "--num-candidates", "0"],
        ["bench", "--repeats", "0"],
        ["bench", "--threads", "-2"],
        ["bench", "--pair-sweep", "512", "0"],
        ["demo", "--num-candidates", "-1"],
        ["link", "model", "in.txt", "--output", "out.jsonl", "--batch-size", "0"],
        ["link", "model", "in.txt", "--output", "out.jsonl", "--top-k", "-1"],
        ["train", "--num-candidates", "-1"],
        ["train", "--batch-size", "0"],
    ],
)
def test_bad_number_fails_at_parsing(argv, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "usage: bel" in err and "integer" in err


def test_mode_lists_accept_commas_and_spaces():
    parser = build_parser()
    assert parser.parse_args(["bench", "--modes", "pair,mention"]).modes == ["pair", "mention"]
    args = parser.parse_args(["bench", "--modes", "pair,mention", "document", "--templates", "compact"])
    assert args.modes == ["pair", "mention", "document"] and args.templates == ["compact"]
    assert parser.parse_args(["bench", "--modes", "pair", "pair,sentence"]).modes == ["pair", "sentence"]
    defaults = parser.parse_args(["bench"])
    assert defaults.modes == list(PACKING_MODES) and defaults.templates == list(TEMPLATES)
    assert defaults.num_candidates == 16 and defaults.pair_sweep == [2048, 4096, 8192, 16384]


def test_defaults_are_kept():
    parser = build_parser()
    evaluation = parser.parse_args(["eval", "model"])
    assert (evaluation.dataset, evaluation.split, evaluation.mode, evaluation.num_candidates) == (
        "ncbi-disease",
        "test",
        None,
        None,
    )
    demo = parser.parse_args(["demo"])
    assert (demo.mode, demo.template, demo.num_candidates, demo.output_dir) == ("sentence", "compact", 8, "runs/demo")
    link = parser.parse_args(["link", "model", "in.txt", "--output", "out.jsonl"])
    assert (link.batch_size, link.top_k) == (8, 5)


def test_shared_options_mean_the_same_everywhere():
    """`--dataset`, `--split`, `--mode` take the same values in every subcommand that has them, and options declared
    in bel.commands.options have the same help apart from their default."""
    expected = {"--dataset": DATASETS, "--split": SPLITS, "--mode": PACKING_MODES, "--template": TEMPLATES}
    helps: dict[str, set[str]] = {}
    for name, parser in _subparsers().items():
        for flag, choices in expected.items():
            action = _option(parser, flag)
            if action is not None:
                assert tuple(action.choices) == tuple(choices), (name, flag)
        for flag in ("--data-dir", "--encoder", "--num-candidates", "--corpus-file", "--kb-file"):
            action = _option(parser, flag)
            if action is not None and name not in ("train", "align"):  # both generated from their config dataclass
                helps.setdefault(flag, set()).add(action.help.split("(default")[0])
    assert all(len(texts) == 1 for texts in helps.values()), helps


def test_demo_finds_a_checkpoint_only_with_its_retriever(tmp_path):
    from bel.commands.demo import find_checkpoint
    from bel.retrieval_bel import RETRIEVER_DIR, has_retriever

    linker = tmp_path / "linker"
    (linker / RETRIEVER_DIR).mkdir(parents=True)
    (linker / "config.json").write_text("{}")
    (linker / "model.safetensors").write_bytes(b"")
    assert find_checkpoint(tmp_path) is None  # an empty retriever directory is not a saved retriever
    (linker / RETRIEVER_DIR / "retriever_config.json").write_text("{}")
    assert has_retriever(linker) and find_checkpoint(tmp_path) == linker
