"""`bel eval MODEL`: Acc@1, Acc@5, MRR, retriever recall@k and an error breakdown on a dataset split.

Keys of the JSON (`--output F.json`) are documented in `bel.evaluation`; `--retriever-only` ranks by the retriever.
"""

from __future__ import annotations

import argparse
import json
import logging

from bel.commands import options, write_json_result

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="saved bel checkpoint directory (omit with --retriever-only)")
    options.add_data_arguments(parser)
    options.add_packing_arguments(parser)
    options.add_num_candidates_argument(parser)
    parser.add_argument(
        "--max-documents",
        type=options.positive_int,
        metavar="N",
        help="evaluate the first N documents only (default: all)",
    )
    parser.add_argument(
        "--max-tokens",
        type=options.positive_int,
        default=2048,
        metavar="N",
        help="padded tokens per inference batch (default: 2048, the fastest of `bel bench`'s sweep)",
    )
    parser.add_argument(
        "--retriever-only",
        action="store_true",
        help="rank by the retriever alone (no model; 16 candidates unless --num-candidates)",
    )
    parser.add_argument(
        "--no-abbreviations",
        action="store_true",
        help="query the retriever with mentions as written (default: expand defined short forms)",
    )
    options.add_json_output_argument(parser)
    parser.add_argument(
        "--predictions",
        metavar="FILE.jsonl",
        help="also write one JSON line per mention here (gold, prediction, top 5, outcome) for error analysis",
    )


def run(args: argparse.Namespace) -> int:
    from bel.saving import load_components
    from bel.evaluation import evaluate_reranker, example_metrics, prediction_records
    from bel.examples import build_examples, build_retriever, load_documents, load_knowledge_base

    if not args.model and not args.retriever_only:
        raise SystemExit("bel eval: pass a MODEL directory, or --retriever-only to evaluate the retriever alone.")
    kb = load_knowledge_base(args.dataset, args.data_dir, args.kb_file)
    docs = load_documents(args.dataset, args.split, args.data_dir, args.corpus_file)
    docs = docs[: args.max_documents] if args.max_documents else docs
    model = tokenizer = retriever = None
    if args.model:
        model, tokenizer, retriever = load_components(args.model)
    if retriever is None:
        train = [] if args.kb_file else load_documents(args.dataset, "train", args.data_dir)
        retriever = build_retriever(kb, train)
    num_candidates = args.num_candidates or (model.config.num_candidates if model is not None else 16)
    examples = build_examples(
        docs, retriever, num_candidates, kb=kb, retrieve_k=64, abbreviations=not args.no_abbreviations
    )
    scores = None
    if args.retriever_only:
        metrics = example_metrics(examples, None, retriever, num_candidates=num_candidates)
        metrics["mode"] = "retriever"
    else:
        if args.num_candidates:
            model.config.num_candidates = num_candidates
        metrics, scores = evaluate_reranker(
            model,
            tokenizer,
            examples,
            retriever,
            mode=args.mode,
            template=args.template,
            max_tokens=args.max_tokens,
            return_scores=True,
        )
    if args.predictions:
        _write_predictions(prediction_records(examples, scores, retriever), args.predictions)
    metrics.update(
        {
            "dataset": args.dataset,
            "split": args.split,
            "model": args.model,
            "documents": len(docs),
            "abbreviations_expanded": not args.no_abbreviations,
        }
    )
    write_json_result(metrics, args.output)
    return 0


def _write_predictions(records, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    logger.info("wrote predictions to %s", path)
