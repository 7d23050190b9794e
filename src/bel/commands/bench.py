"""`bel bench`: time every packing mode (and template) on the same encoder and candidates; see `bel.benchmark`."""

from __future__ import annotations

import argparse
import logging

from bel.commands import options, write_json_result

logger = logging.getLogger(__name__)


SWEEP = (2048, 4096, 8192, 16384)
COUNTS = (  # positive integer options: flag, default, help
    ("--max-documents", 12, "documents timed (default: 12)"),
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

    if args.model:
        check_saved_linker(args.model)
    options.check_output_file(args.output, "--output")
    with options.runtime(args):
        return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    from bel import BelForMultiCandidateLinking, BelTokenizer
    from bel.benchmark import run_benchmark
    from bel.commands.eval import alias_documents, input_files, retriever_for_checkpoint
    from bel.encoders import default_encoder, set_attention_dropout
    from bel.examples import build_examples, build_retriever, load_documents, load_knowledge_base
    from bel.saving import load_components

    files = input_files(args)
    kb = load_knowledge_base(args.dataset, args.data_dir, args.kb_file)
    docs = load_documents(args.dataset, args.split, args.data_dir, args.corpus_file)[: args.max_documents]
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
    examples = build_examples(docs, retriever, args.num_candidates, kb=kb)
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
