"""Run code in a fresh interpreter where `bel` is NOT importable (no site .pth files, cwd elsewhere, offline)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

PRELUDE = """
import sys
sys.path[:0] = {paths!r}
import importlib.util
assert importlib.util.find_spec("bel") is None, "bel must not be importable here"
"""


def run_without_bel(code: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> dict:
    """Run `code` with `python -S` (the editable install's .pth is never read) and return the JSON it prints last."""
    paths = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}]
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    environment.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})})
    script = PRELUDE.format(paths=sorted(paths)) + code
    result = subprocess.run(
        [sys.executable, "-S", "-c", script], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"fresh process failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
