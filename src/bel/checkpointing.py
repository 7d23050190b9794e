"""Training state: resumable checkpoints (Accelerate state + ``meta.json`` + a completion marker) and JSONL metrics.

A resumable checkpoint is ``OUTPUT/checkpoints/step_<N>/``: ``accelerator.save_state`` files, ``meta.json`` (global
step, epoch, batches seen in that epoch, best score, history) and, written **last** by the main process after every
rank has finished, the marker ``COMPLETE``. A directory without the marker (a run killed while saving) is never
picked by ``--resume-from-checkpoint latest``.

The linker a run produces (``OUTPUT/best``) is saved and loaded by :mod:`bel.saving`, not here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from accelerate.tracking import GeneralTracker

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "COMPLETE"
META_FILE = "meta.json"
CHECKPOINTS = "checkpoints"


def checkpoint_dir(output_dir: str | os.PathLike, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step_{step:08d}"


def complete_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Completed checkpoints of a run, oldest first (directories without the marker are skipped)."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / COMPLETE_MARKER).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("_", 1)[1]))


def resolve_checkpoint(value: str | None, output_dir: str | os.PathLike) -> Path | None:
    """``latest`` -> newest complete checkpoint of ``output_dir`` (None when there is none); a path -> that path."""
    if not value:
        return None
    if value == "latest":
        found = complete_checkpoints(output_dir)
        if not found:
            logger.warning("--resume-from-checkpoint latest: no complete checkpoint in %s; starting fresh", output_dir)
            return None
        return found[-1]
    path = Path(value)
    if not (path / COMPLETE_MARKER).is_file():
        raise FileNotFoundError(
            f"{path} is not a complete checkpoint (no {COMPLETE_MARKER} marker); pass another "
            "checkpoint directory or `latest`."
        )
    return path


def read_meta(path: Path) -> dict:
    return json.loads((path / META_FILE).read_text(encoding="utf-8"))


def save_checkpoint(accelerator, output_dir, meta: dict, keep: int = 2) -> Path:
    """Save the full training state at ``meta['global_step']``; all ranks must call this."""
    path = checkpoint_dir(output_dir, meta["global_step"])
    accelerator.wait_for_everyone()
    accelerator.save_state(str(path))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (path / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n", encoding="utf-8")
        for old in complete_checkpoints(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    logger.info("saved checkpoint %s", path)
    return path


class JsonlTracker(GeneralTracker):
    """Offline Accelerate tracker: one JSON object per ``log`` call in ``<logging_dir>/metrics.jsonl``.

    Register with ``accelerate.tracking.register_tracker_class(JsonlTracker)`` *before* ``Accelerator(log_with="jsonl")``.
    """

    name = "jsonl"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike, **kwargs):
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def tracker(self):
        return self.path

    def _write(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def store_init_configuration(self, values: dict) -> None:
        self._write({"type": "config", "run": self.run_name, "config": values})

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        self._write({"type": "metrics", "step": step, "time": time.time(), **values})
