"""`bel bench`: time every packing mode (and template) on the same encoder and candidates; see `bel.benchmark`.

`bel bench --end-to-end CHECKPOINT` profiles whole `bel link` runs of a saved linker instead (see `bel.profiling`):
the corpus (`--corpus-file`, else `--dataset`/`--split`) linked from raw text (`raw_text`: the checkpoint's detector
finds the mentions) and from its given spans (`given_spans`), each run in a fresh process, `--repeats` times
interleaved; the JSON holds, per configuration, the medians of documents/s, mentions/s, peak RSS, seconds and share
per stage, and the mentions each stage decided (`decided_by`).
"""

from __future__ import annotations

import argparse
import logging
import os

from bel.commands import options, write_json_result

logger = logging.getLogger(__name__)


SWEEP = (2048, 4096, 8192, 16384)
COUNTS = (  # positive integer options: flag, default, help
    ("--max-documents", None, "documents timed (default: 12; with --end-to-end: all)"),
    ("--train-documents", 3, "documents of the training-step timing (default: 3)"),
    ("--repeats", 3, "interleaved repetitions (median reported; default: 3)"),
    ("--max-tokens", 16384, "padded-token budget of packed modes when --packed-sweep is empty (default: 16384)"),
)
# parameters of bel.benchmark.run_benchmark given by the option of the same name
BENCHMARK_OPTIONS = ("modes", "templates", "repeats", "max_tokens", "pair_sweep", "packed_sweep")
SWEEPS = (  # token-budget list options: flag, nargs, help
    ("--pair-sweep", "+", f"token budgets tried for the pair baseline (default: {' '.join(map(str, SWEEP))})"),
    (
        "--packed-sweep",
        "*",
        "token budgets tried for each packed mode (default: the pair baseline's sweep; pass it empty to use "
        "--max-tokens)",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_data_arguments(parser)
    parser.add_argument("--model", help="a saved bel checkpoint directory (default: a fresh model on --encoder)")
    parser.add_argument(
        "--end-to-end",
        metavar="CHECKPOINT",
        help="profile whole `bel link` runs of this saved linker over the corpus, from raw text and from the given "
        "spans (documents/s, mentions/s, peak RSS, time per stage) instead of timing packing modes",
    )
    options.add_inference_arguments(parser)
    options.add_encoder_argument(parser)
    options.add_num_candidates_argument(parser, default=16)
    options.add_mode_list_arguments(parser)
    options.add_count_arguments(parser, COUNTS)
    for flag, nargs, text in SWEEPS:
        parser.add_argument(flag, type=options.positive_int, nargs=nargs, default=list(SWEEP), metavar="N", help=text)
    parser.add_argument(
        "--attention-dropout",
        type=float,
        default=0.0,
        help="encoder attention dropout in the timed training passes (default 0, as `bel train`)",
    )
    parser.add_argument("--no-cross-encoder", action="store_true", help="skip the sentence-transformers baseline")
    options.add_runtime_arguments(parser)
    options.add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    from bel.saving import check_saved_linker

    if args.end_to_end and args.model:
        raise SystemExit("bel bench: --end-to-end takes the checkpoint itself; drop --model.")
    if not args.end_to_end and (args.backend != "torch" or args.cascade is not None):
        raise SystemExit("bel bench: --backend and --no-cascade apply to --end-to-end runs only.")
    for checkpoint in (args.model, args.end_to_end):
        if checkpoint:
            check_saved_linker(checkpoint)
    options.check_backend_installed(args)
    options.check_output_file(args.output, "--output")
    if args.end_to_end:
        return _end_to_end(args)  # the linking runs in child processes, which apply --threads themselves
    with options.runtime(args):
        return _bench(args)


def _end_to_end(args: argparse.Namespace) -> int:
    import tempfile

    from bel.profiling import profile_configurations

    device = options.device_for(args)
    common = {"threads": args.threads, "backend": args.backend, "cascade": args.cascade, "device": device}
    with tempfile.TemporaryDirectory(prefix="bel-bench-") as workdir:
        source, corpus, fmt = _end_to_end_corpus(args, workdir)
        configurations = {
            "raw_text": {"detect_mentions": True, "input_format": fmt, **common},
            "given_spans": {"detect_mentions": False, "input_format": fmt, **common},
        }
        profiles = profile_configurations(args.end_to_end, corpus, configurations, repeats=args.repeats)
    settings = {
        "checkpoint": str(args.end_to_end),
        "corpus_file": os.path.abspath(source),
        "input_format": fmt,
        "max_documents": args.max_documents,
        "repeats": args.repeats,
        "threads": args.threads,
        "backend": args.backend,
        "cascade": args.cascade,
        "device": device,
    }
    if not args.corpus_file:
        settings.update(dataset=args.dataset, split=args.split)
    write_json_result({"settings": settings, **profiles}, args.output)
    return 0


def _end_to_end_corpus(args: argparse.Namespace, workdir: str):
    """`(source, corpus, format)`: the corpus file (--corpus-file, any `bel link` input format, else the PubTator
    file of --dataset/--split), the file to link (a copy of its first --max-documents documents in `workdir` when
    given) and its format."""
    from pathlib import Path

    from bel.data.datasets import corpus_path
    from bel.linking import INPUT_FORMATS, guess_format
    from bel.profiling import subset_corpus

    source = Path(args.corpus_file) if args.corpus_file else corpus_path(args.dataset, args.split, args.data_dir)
    fmt = guess_format(source, INPUT_FORMATS) if args.corpus_file else "pubtator"
    corpus = subset_corpus(source, args.max_documents, workdir, fmt) if args.max_documents else source
    return source, corpus, fmt


def _bench(args: argparse.Namespace) -> int:
    from bel import BelForMultiCandidateLinking, BelTokenizer
    from bel.benchmark import run_benchmark
    from bel.commands.eval import alias_documents, input_files, retriever_for_checkpoint
    from bel.encoders import default_encoder, set_attention_dropout
    from bel.examples import build_examples, build_retriever, load_documents, load_knowledge_base
    from bel.saving import load_components

    files = input_files(args)
    kb = load_knowledge_base(args.dataset, args.data_dir, args.kb_file)
    docs = load_documents(args.dataset, args.split, args.data_dir, args.corpus_file)[: args.max_documents or 12]
    encoder = args.encoder or default_encoder()
    if args.model:
        model, tokenizer, retriever = load_components(args.model)
    else:
        tokenizer = BelTokenizer.from_encoder(encoder)
        model = BelForMultiCandidateLinking.from_encoder(
            encoder, tokenizer=tokenizer, slot_pooling="span", num_candidates=args.num_candidates
        ).eval()
        retriever = None
    set_attention_dropout(model, args.attention_dropout)
    if args.model:  # the checkpoint's retriever when it indexes this KB, else rebuilt from it (and logged)
        retriever, source, alias_files = retriever_for_checkpoint(args, kb, retriever)
    else:
        train, alias_files, _ = alias_documents(args)
        retriever, source = build_retriever(kb, train), "built"
    examples = build_examples(docs, retriever, args.num_candidates, kb=kb, namespaces=model.config.candidate_namespace)
    inputs = [e.input for e in examples]
    result = run_benchmark(
        model,
        tokenizer,
        inputs,
        train_inputs=inputs[: args.train_documents],
        cross_encoder=None if args.no_cross_encoder or args.model else encoder,
        **{name: getattr(args, name) for name in BENCHMARK_OPTIONS},
    )
    result["settings"].update(
        {
            "dataset": args.dataset,
            "split": args.split,
            "num_candidates": args.num_candidates,
            "encoder": str(args.model or encoder),
            **files,
            "alias_corpus_files": alias_files,
            "retriever": source,
        }
    )
    write_json_result(result, args.output)
    return 0
