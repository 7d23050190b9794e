"""`bel bench`: time every packing mode (and template) on the same encoder and candidates; see `bel.benchmark`."""

from __future__ import annotations

import argparse
import logging

from bel.commands import write_json_result

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="ncbi-disease", help="ncbi-disease, bc5cdr-disease or bc5cdr-chemical")
    parser.add_argument("--split", default="test", help="train, dev or test (default: test)")
    parser.add_argument("--data-dir", help="corpora directory (default: BEL_DATA_DIR)")
    parser.add_argument("--corpus-file", help="explicit PubTator file instead of --dataset/--split")
    parser.add_argument("--kb-file", help="explicit KB file instead of the dataset's KB")
    parser.add_argument("--model", help="a saved bel checkpoint directory (default: a fresh model on --encoder)")
    parser.add_argument("--encoder", help="encoder for a fresh model (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--num-candidates", type=int, default=16)
    parser.add_argument("--modes", nargs="+", default=["pair", "mention", "sentence", "passage", "document"])
    parser.add_argument("--templates", nargs="+", default=["paper", "compact"])
    parser.add_argument("--max-documents", type=int, default=12, help="documents timed (default: 12)")
    parser.add_argument("--train-documents", type=int, default=3, help="documents of the training-step timing")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (median reported)")
    parser.add_argument("--max-tokens", type=int, default=16384,
                        help="padded-token budget of packed modes when --packed-sweep is empty")
    parser.add_argument("--pair-sweep", type=int, nargs="+", default=[2048, 4096, 8192, 16384],
                        help="token budgets tried for the pair baseline")
    parser.add_argument("--packed-sweep", type=int, nargs="*", default=[2048, 4096, 8192, 16384],
                        help="token budgets tried for each packed mode (default: the pair baseline's sweep; "
                             "pass it empty to use --max-tokens)")
    parser.add_argument("--attention-dropout", type=float, default=0.0,
                        help="encoder attention dropout in the timed training passes (default 0, as `bel train`)")
    parser.add_argument("--no-cross-encoder", action="store_true", help="skip the sentence-transformers baseline")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--output", help="write the JSON result here (default: stdout)")


def run(args: argparse.Namespace) -> int:
    import torch

    from bel import BelForMultiCandidateLinking, BelTokenizer
    from bel.benchmark import run_benchmark
    from bel.checkpointing import load_pipeline
    from bel.examples import build_examples, build_retriever, load_documents, load_knowledge_base
    from bel.encoders import default_encoder, set_attention_dropout

    if args.threads:
        torch.set_num_threads(args.threads)
    kb = load_knowledge_base(args.dataset, args.data_dir, args.kb_file)
    docs = load_documents(args.dataset, args.split, args.data_dir, args.corpus_file)[: args.max_documents]
    encoder = args.encoder or default_encoder()
    if args.model:
        model, tokenizer, retriever = load_pipeline(args.model)
    else:
        tokenizer = BelTokenizer.from_encoder(encoder)
        model = BelForMultiCandidateLinking.from_encoder(encoder, tokenizer=tokenizer, slot_pooling="span",
                                                         num_candidates=args.num_candidates).eval()
        retriever = None
    set_attention_dropout(model, args.attention_dropout)
    if retriever is None:
        train = [] if args.kb_file else load_documents(args.dataset, "train", args.data_dir)
        retriever = build_retriever(kb, train)
    examples = build_examples(docs, retriever, args.num_candidates, kb=kb)
    inputs = [e.input for e in examples]
    result = run_benchmark(
        model, tokenizer, inputs, modes=args.modes, templates=args.templates, repeats=args.repeats,
        max_tokens=args.max_tokens, pair_sweep=args.pair_sweep, train_inputs=inputs[: args.train_documents],
        cross_encoder=None if args.no_cross_encoder or args.model else encoder, packed_sweep=args.packed_sweep,
    )
    result["settings"].update({"dataset": args.dataset, "split": args.split, "num_candidates": args.num_candidates,
                               "encoder": str(args.model or encoder)})
    write_json_result(result, args.output)
    return 0
