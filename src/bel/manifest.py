"""Provenance of a run: command line, git commit of the bel sources, library versions, machine, time.

`run_manifest()` is stored under the `"manifest"` key of every JSON result `bel eval` / `bel bench` write, and as
`manifest.json` in the run folders of `eval/runs/` (the recipes in `eval/recipes/` call this module):

    python -m bel.manifest eval/runs/NAME/manifest.json -- the recipe command line ...

Everything fails soft: a field that cannot be determined is None. The host name is deliberately not recorded.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "tokenizers", "accelerate", "numpy", "scipy")


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state(package_dir: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit sha, dirty) of the git checkout holding the bel sources; (None, None) when they are not in one.

    The package directory must itself be tracked by the checkout (an installed copy inside some other repository's
    virtualenv does not count). Dirty = tracked files modified (untracked files, e.g. new run records, are ignored).
    """
    package_dir = package_dir or Path(__file__).resolve().parent
    sha = _git("rev-parse", "HEAD", cwd=package_dir)
    if not sha or _git("ls-files", "--error-unmatch", "__init__.py", cwd=package_dir) is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=package_dir)
    return sha, (bool(status) if status is not None else None)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    try:
        from bel import __version__ as bel_version
    except Exception:  # provenance must never break a run
        bel_version = _version("bel-linking")
    versions["bel"] = bel_version
    versions.update({name: _version(name) for name in PACKAGES})
    return versions


def machine() -> dict:
    """Platform, processor, CPU count and torch threads (no host name)."""
    try:
        import torch

        threads = torch.get_num_threads()
    except Exception:
        threads = None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "torch_threads": threads,
    }


def _command(argv: list[str] | None) -> str:
    if argv is None:
        argv = list(sys.argv)
        if argv and argv[0].replace("\\", "/").endswith("bel/__main__.py"):
            argv[0:1] = ["python", "-m", "bel"]
        elif argv:
            argv[0] = Path(argv[0]).name
    return shlex.join(argv)


def run_manifest(argv: list[str] | None = None) -> dict:
    """The manifest of this process: `argv` (default `sys.argv`, program shown by name only) and the rest."""
    sha, dirty = git_state()
    return {
        "command": _command(argv),
        "git_sha": sha,
        "git_dirty": dirty,
        "versions": library_versions(),
        "machine": machine(),
        "time_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bel.manifest OUT.json [-- COMMAND ...]`: write the manifest of COMMAND (a recipe) to OUT.json."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(main.__doc__)
        return 0 if argv else 2
    output, rest = argv[0], argv[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    manifest = run_manifest(rest or None)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
