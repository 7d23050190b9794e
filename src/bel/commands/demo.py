"""`bel demo`: train (or reuse) a small MiniLM linker and mention detector on NCBI Disease, then link an example.

Budget: a few minutes on 2 CPU cores (the reranker: 60 training documents, one epoch, 8 candidates; the mention
detector: 150 training documents, three epochs). It skips the synonym alignment and the dense retriever of `bel
train`'s default recipe (TF-IDF candidates), which would cost tens of minutes on this budget. The full
pipeline directory is left in `--output-dir/linker`; rerunning reuses it.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from bel.commands import options

logger = logging.getLogger(__name__)

EXAMPLE = (
    "Varicella is a highly contagious viral infection that causes an acute fever and blistered rash, mainly in "
    "children."
)
COUNTS = (  # positive integer options: flag, default, help
    ("--max-train-documents", 60, "training documents (default: 60)"),
    ("--epochs", 1, "training epochs (default: 1)"),
    ("--detector-train-documents", 150, "training documents of the mention detector (default: 150)"),
    ("--detector-epochs", 3, "mention detector epochs (default: 3)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_data_arguments(parser, dataset_help="training corpus", split=False, files=False)
    parser.add_argument(
        "--output-dir",
        default="runs/demo",
        help="where the trained linker is left, in OUTPUT_DIR/linker (default: runs/demo)",
    )
    options.add_encoder_argument(parser)
    options.add_packing_arguments(parser, mode="sentence", template="compact")
    options.add_num_candidates_argument(parser, default=8)
    options.add_count_arguments(parser, COUNTS)
    parser.add_argument(
        "--no-retrieval-score",
        action="store_true",
        help="do not feed the retriever's score to the scorer (by default the reranker starts from it)",
    )
    parser.add_argument(
        "--text", default=EXAMPLE, help="text to link after training (default: a sentence on varicella)"
    )


def find_checkpoint(output_dir: Path) -> Path | None:
    """A finished linker directory inside `output_dir` (the demo's own, or any saved pipeline directory)."""
    from bel.retrieval_bel import has_retriever

    for candidate in (output_dir / "linker", output_dir, output_dir / "best"):
        if (
            (candidate / "config.json").exists()
            and (candidate / "model.safetensors").exists()
            and has_retriever(candidate)
        ):
            return candidate
    return None


def run(args: argparse.Namespace) -> int:
    import shutil

    from bel.saving import load_linker

    output_dir = Path(args.output_dir)
    checkpoint = find_checkpoint(output_dir)
    if checkpoint is None:
        from bel.training import TrainConfig, train

        started = time.perf_counter()
        common = {"dataset": args.dataset, "data_dir": args.data_dir, "encoder": args.encoder, "eval_max_documents": 30}
        config = TrainConfig(
            **common,
            mode=args.mode,
            template=args.template,
            num_candidates=args.num_candidates,
            epochs=args.epochs,
            max_train_documents=args.max_train_documents,
            use_retrieval_score=not args.no_retrieval_score,
            align=False,  # the demo's budget: no synonym alignment, TF-IDF candidates
            retrieval="tfidf",
            output_dir=str(output_dir / "training"),
        )
        best = train(config)
        detector = TrainConfig(
            **common,
            stage="detector",
            max_train_documents=args.detector_train_documents,
            detector_epochs=args.detector_epochs,
            output_dir=str(output_dir / "training"),
            attach_to=str(best),
        )
        train(detector)
        checkpoint = output_dir / "linker"
        if checkpoint.exists():
            shutil.rmtree(checkpoint)
        shutil.copytree(best, checkpoint)
        logger.info("trained in %.0f s; linker saved to %s", time.perf_counter() - started, checkpoint)
    else:
        logger.info("reusing the linker in %s", checkpoint)
    linker = load_linker(checkpoint)
    print(args.text)
    for mention in linker(args.text):
        entity = mention["entity_id"] or f"NIL ({mention.get('nil_reason')})"
        print(
            f"  {mention['start']:>4}-{mention['end']:<4} {mention['text']!r:<28} {mention['type'] or '-':<9} -> {entity} "
            f"{mention['entity_name'] or ''} (p={mention['score']})"
        )
    print(f"linker: {checkpoint}")
    return 0
