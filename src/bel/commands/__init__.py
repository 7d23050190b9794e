"""Subcommands of the `bel` command line, one module each (see bel.cli)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def write_json_result(result: dict, output: str | None) -> None:
    """Write a command's JSON result to `output` (parents created), or print it when no output is given.

    The result gains a `"manifest"` key (command line, git sha, library versions, machine: `bel.manifest`) unless it
    already has one.
    """
    from bel.manifest import run_manifest

    if "manifest" not in result:
        result = {**result, "manifest": run_manifest()}
    text = json.dumps(result, indent=2)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text + "\n", encoding="utf-8")
        logger.info("wrote %s", output)
    else:
        print(text)
