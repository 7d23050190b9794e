"""`bel eval MODEL`: Acc@1, Acc@5, MRR, retriever recall@k and an error breakdown on a dataset split.

Keys of the JSON (`--output F.json`) are documented in `bel.evaluation`; `--retriever-only` ranks by the retriever.
`--end-to-end` adds the key `end_to_end`: the linker pipeline run on each document's raw text (no gold spans), its
mentions scored against the gold ones (keys in `bel.end_to_end`), plus `detector`, `backend`, `cascade` (whether the
confidence cascade ran), `end_to_end_seconds` and `documents_per_second`.

`--backend torch|int8|onnx` runs the reranker (and the end-to-end pipeline) on that backend, named by the key
`backend`; `--no-cascade` reranks every mention (the key `cascade` of `bel.evaluation.evaluate_reranker` says whether
the cascade ran, `cascade.enabled`, and what it decided). `--repeated-names first|pool|each` sets what the reranker does
with a document's repeated names (`bel.consistency_bel`; default: the checkpoint's), named by the key `repeated_names`.

The JSON also names what was read: `corpus_files` (absolute paths), `kb_file`, `alias_corpus_files` (training corpora
whose mentions became retriever aliases) and `retriever`: `checkpoint` (the MODEL's own, when it indexes the KB
evaluated on), `rebuilt` (the KB differs from the checkpoint's: the retriever is rebuilt from it with the checkpoint's
settings, and the log says so) or `built` (`--retriever-only`).

`--type-filter` (the default; `--no-type-filter` turns it off) gives each gold mention's entity type
(`bel.data.datasets.entity_type`) to the retriever, which then returns candidates of that type's KB branch only (MeSH
trees C and F03 for diseases, D for chemicals; see `bel.retrieval_bel`) when the KB has categories. A checkpoint saved
before the filter gets the KB's categories attached when its retriever indexes the evaluation KB. The key
`type_filter` says whether the filter was on (asked for, and the retriever has categories).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from bel.commands import options, write_json_result

logger = logging.getLogger(__name__)

COUNTS = (  # positive integer options: flag, default, help
    ("--max-documents", None, "evaluate the first N documents only (default: all)"),
    ("--max-tokens", 2048, "padded tokens per inference batch (default: 2048, the fastest of `bel bench`'s sweep)"),
)
FLAGS = (  # on/off options: flag, help
    ("--retriever-only", "rank by the retriever alone (no model; 16 candidates unless --num-candidates)"),
    ("--no-abbreviations", "query the retriever with mentions as written (default: expand defined short forms)"),
    (
        "--end-to-end",
        "also link each document's raw text with the MODEL's pipeline (mentions detected, not given) and score "
        "detection and linking against the gold mentions (key end_to_end of the JSON)",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="saved bel checkpoint directory (omit with --retriever-only)")
    options.add_data_arguments(parser)
    options.add_packing_arguments(parser)
    options.add_num_candidates_argument(parser)
    options.add_count_arguments(parser, COUNTS)
    for flag, text in FLAGS:
        parser.add_argument(flag, action="store_true", help=text)
    options.add_detector_argument(parser)
    options.add_inference_arguments(parser)
    options.add_repeated_names_argument(parser)
    options.add_runtime_arguments(parser)
    options.add_output_argument(parser)
    parser.add_argument(
        "--type-filter",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restrict each mention's candidates to its entity type's KB branch (MeSH C/F03 for diseases, D for "
        "chemicals) when the KB has categories (default: on; --no-type-filter searches all entities)",
    )
    parser.add_argument(
        "--predictions",
        metavar="FILE.jsonl",
        help="also write one JSON line per mention here (gold, prediction, top 5, outcome) for error analysis",
    )


def run(args: argparse.Namespace) -> int:
    if not args.model and not args.retriever_only:
        raise SystemExit("bel eval: pass a MODEL directory, or --retriever-only to evaluate the retriever alone.")
    if args.end_to_end and not args.model:
        raise SystemExit("bel eval: --end-to-end runs the MODEL's pipeline on raw text; pass a MODEL directory.")
    if args.detector is not None and not args.end_to_end:
        raise SystemExit("bel eval: --detector applies to raw text only; add --end-to-end.")
    if args.retriever_only and (args.backend != "torch" or args.cascade is not None or args.repeated_names):
        raise SystemExit(
            "bel eval: --backend, --no-cascade and --repeated-names apply to the MODEL; --retriever-only runs none."
        )
    check_inputs(args)
    with options.runtime(args):
        return _evaluate(args)


def check_inputs(args: argparse.Namespace) -> None:
    """Everything that can be checked before loading a corpus or a model: the MODEL directory (a saved bel linker
    with safetensors weights) and the files to write (`--output`, `--predictions`)."""
    from bel.saving import check_saved_linker

    if args.model:
        check_saved_linker(args.model)
    options.check_backend_installed(args)
    options.check_output_file(args.output, "--output")
    options.check_output_file(args.predictions, "--predictions")


def _evaluate(args: argparse.Namespace) -> int:
    from bel.evaluation import evaluate_reranker, example_metrics, prediction_records
    from bel.examples import build_examples, load_documents, load_knowledge_base, mention_types
    from bel.saving import load_components

    files = input_files(args)
    kb = load_knowledge_base(args.dataset, args.data_dir, args.kb_file)
    docs = load_documents(args.dataset, args.split, args.data_dir, args.corpus_file)
    docs = docs[: args.max_documents] if args.max_documents else docs
    model = tokenizer = None
    if args.model:
        model, tokenizer, retriever = load_components(args.model, backend=args.backend)
        model.to(options.device_for(args))
        retriever, retriever_source, alias_files = retriever_for_checkpoint(args, kb, retriever)
    else:
        retriever, alias_files = _fresh_retriever(args, kb)
        retriever_source = "built"
    attached = args.type_filter and _attach_categories(retriever, retriever_source, kb)
    type_filter = bool(args.type_filter and retriever.entity_categories and retriever.type_categories)
    types = mention_types(docs, args.dataset) if type_filter else None
    num_candidates = args.num_candidates or (model.config.num_candidates if model is not None else 16)
    examples = build_examples(
        docs,
        retriever,
        num_candidates,
        kb=kb,
        retrieve_k=64,
        abbreviations=not args.no_abbreviations,
        types=types,
        namespaces=model is not None and model.config.candidate_namespace,
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
            cascade=args.cascade,
            repeated_names=args.repeated_names,
        )
        metrics["backend"] = args.backend
    if args.predictions:
        _write_predictions(prediction_records(examples, scores, retriever), args.predictions)
    metrics.update(
        {
            "dataset": args.dataset,
            "split": args.split,
            "model": args.model,
            "documents": len(docs),
            "abbreviations_expanded": not args.no_abbreviations,
            **files,
            "alias_corpus_files": alias_files,
            "retriever": retriever_source,
            "type_filter": type_filter,
        }
    )
    if args.end_to_end:
        linker_retriever = retriever if retriever_source == "rebuilt" or attached else None
        metrics["end_to_end"] = evaluate_end_to_end(args, docs, kb, linker_retriever)
    write_json_result(metrics, args.output)
    return 0


def _attach_categories(retriever, source: str, kb) -> bool:
    """Give the KB's categories to a checkpoint retriever saved without them (it indexes this KB: `source` is
    "checkpoint"); True when attached."""
    categories = kb.categories()
    if source != "checkpoint" or retriever.entity_categories or not categories:
        return False
    retriever.with_categories(categories)
    logger.info(
        "type filter: the KB's categories (%d entities) attached to the checkpoint's retriever", len(categories)
    )
    return True


def input_files(args: argparse.Namespace) -> dict:
    """`corpus_files` (a list) and `kb_file`: the absolute paths of the corpus and KB files a command reads."""
    from bel.data.datasets import corpus_path, kb_path

    corpus = args.corpus_file or corpus_path(args.dataset, args.split, args.data_dir)
    kb = args.kb_file or kb_path(args.dataset, args.data_dir)
    return {"corpus_files": [os.path.abspath(corpus)], "kb_file": os.path.abspath(kb)}


def alias_documents(args: argparse.Namespace) -> tuple[list, list[str], str | None]:
    """Training documents whose mentions become retriever aliases, their files, and how the log names them: the
    dataset's train split, none with --kb-file (a dataset's mentions carry ids of the dataset's own KB)."""
    from bel.data.datasets import corpus_path
    from bel.examples import load_documents

    if args.kb_file:
        return [], [], None
    path = corpus_path(args.dataset, "train", args.data_dir)
    return load_documents(args.dataset, "train", args.data_dir), [os.path.abspath(path)], f"{args.dataset} train"


def _fresh_retriever(args: argparse.Namespace, kb):
    """The retriever of `--retriever-only`: the KB's names plus the training aliases of `alias_documents`."""
    from bel.examples import build_retriever

    train, files, _ = alias_documents(args)
    if args.kb_file:
        logger.warning(
            "--kb-file %s: the retriever indexes its names only, without training-mention aliases (they come from "
            "a dataset's train split, whose ids belong to the dataset's own KB)",
            args.kb_file,
        )
    return build_retriever(kb, train), files


def retriever_for_checkpoint(args: argparse.Namespace, kb, retriever):
    """`(retriever, "checkpoint" | "rebuilt", alias files)`: the checkpoint's retriever when it indexes this KB, else
    one rebuilt from the KB (see bel.saving.retriever_for_kb); never the checkpoint's over another KB."""
    from bel.saving import indexes_kb, retriever_for_kb

    if retriever is not None and indexes_kb(retriever, kb):
        logger.info("the checkpoint's retriever indexes the evaluation KB (%d entities): using it", len(kb))
        return retriever, "checkpoint", []
    train, files, aliases_from = alias_documents(args)
    kb_file = args.kb_file or input_files(args)["kb_file"]
    rebuilt = retriever_for_kb(
        args.model, kb, kb_file=kb_file, retriever=retriever, train_documents=train, aliases_from=aliases_from
    )
    return rebuilt, "rebuilt", files


def _write_predictions(records, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    logger.info("wrote predictions to %s", path)


def evaluate_end_to_end(args: argparse.Namespace, docs, kb, retriever=None) -> dict:
    """Link each document's raw text with the pipeline of `args.model` and score it against the gold mentions.

    Gold types are mapped with `bel.data.datasets.entity_type` and gold ids canonicalised to the KB's primary ids;
    `--mode`, `--num-candidates` and `--detector` go to the pipeline when given. `end_to_end_seconds` times the
    pipeline call: model loading excluded, first-use loading of the retriever, dictionary matcher or detector included.
    `retriever` (a KB swap, see `retriever_for_checkpoint`) replaces the checkpoint's.
    """
    from dataclasses import replace

    from bel.data.datasets import entity_type
    from bel.end_to_end import end_to_end_metrics
    from bel.examples import canonical_gold
    from bel.saving import load_linker

    linker = load_linker(args.model, options.device_for(args), retriever=retriever, backend=args.backend)
    if args.detector == "model" and hasattr(linker, "detector") and linker.detector is None:
        raise SystemExit(
            f"bel eval: --detector model but {args.model} has no learned detector (no detector/ folder); use "
            "--detector dictionary or auto, or train one with `bel train --stage detector`."
        )
    items = [_pipeline_input(doc) for doc in docs]
    call_options = {"batch_size": 8}
    if args.detector is not None:  # only when asked: pipelines without the parameter still work
        call_options["detector"] = args.detector
    if args.mode is not None:
        call_options["mode"] = args.mode
    if args.num_candidates is not None:
        call_options["num_candidates"] = args.num_candidates
    if args.cascade is not None:
        call_options["cascade"] = args.cascade
    if args.repeated_names is not None:
        call_options["repeated_names"] = args.repeated_names
    if not getattr(args, "type_filter", True):  # only when off: pipelines without the parameter still work
        call_options["type_filter"] = False
    start = time.perf_counter()
    predicted = linker(items, **call_options) if items else []
    seconds = time.perf_counter() - start
    gold = [
        [
            replace(mention, type=entity_type(args.dataset, mention.type), ids=canonical_gold(mention.ids, kb))
            for mention in doc.mentions
        ]
        for doc in docs
    ]
    result = end_to_end_metrics(gold, predicted, in_kb=lambda entity_id: entity_id in kb)
    result.update(
        {
            "detector": _detector_name(linker, args.detector),
            "backend": getattr(linker, "backend", args.backend),
            "cascade": getattr(linker.model.config, "cascade", False) if args.cascade is None else args.cascade,
            "repeated_names": args.repeated_names or getattr(linker.model.config, "repeated_names", "first"),
            "end_to_end_seconds": seconds,
            "documents_per_second": len(docs) / seconds if seconds > 0 else 0.0,
        }
    )
    return result


def _pipeline_input(doc) -> dict:
    """The raw text of `doc` with its passages (detection runs per passage), no mentions."""
    item = {"text": doc.text}
    if doc.passages:
        item["passages"] = [[p.offset, p.end] for p in sorted(doc.passages, key=lambda p: p.offset)]
    return item


def _detector_name(linker, requested: str | None) -> str:
    """What found the mentions: "model" (the checkpoint's learned detector) or "dictionary"."""
    if requested in ("model", "dictionary"):
        return requested
    return "model" if getattr(linker, "detector", None) is not None else "dictionary"
