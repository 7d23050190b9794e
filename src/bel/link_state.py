"""The on-disk state of a `bel link` run (see `bel.linking` for the whole flow).

Run identity: `checkpoint_identity` (what links, fingerprinted), `identity_differences` and the refusal messages of a
partial run that this run cannot resume. Locking: `exclusive_lock` / `run_lock` (one writer per output and per shard;
`OutputLockedError` names the holder). Shard files and progress: the work file and progress sidecar paths of each
shard, `prepare_run` (start over, or refuse early), loading and atomically replacing a sidecar, the state a shard
continues from, and `verify_work_file` (re-hash a work file against its sidecar).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bel.linking import LinkSettings

# the logger of `bel.linking`: a run's messages keep the logger name they were always logged under
logger = logging.getLogger("bel.linking")

PROGRESS_VERSION = 2
_EMPTY_SHA256 = hashlib.sha256().hexdigest()


# ---------------------------------------------------------------------------------------------------- identity
def checkpoint_identity(model: str | os.PathLike, linker=None) -> dict:
    """Fingerprint of what links: a local directory's sha256 (see `directory_sha256`), a Hub id with its resolved
    revision, or (an in-memory model without a path) the sha256 of its weights."""
    name = str(model or "")
    if name and Path(name).is_dir():
        return {"directory": str(Path(name).resolve()), "sha256": directory_sha256(Path(name))}
    config = getattr(getattr(linker, "model", None), "config", None)
    if name:
        return {"hub_id": name, "revision": getattr(config, "_commit_hash", None)}
    return {"weights_sha256": _weights_sha256(linker.model)}


def directory_sha256(directory: Path) -> str:
    """sha256 over the sorted relative paths and contents of every file under `directory` except README.md (the
    model card changes with nothing that links)."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and p.relative_to(directory).as_posix() != "README.md"
    )
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode("utf-8") + b"\0")
        digest.update(file_sha256(path).encode("ascii"))
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's contents, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_sha256(model) -> str:
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _describe_checkpoint(checkpoint: dict) -> str:
    if "directory" in checkpoint:
        return f"directory {checkpoint['directory']} (sha256 {checkpoint['sha256'][:12]})"
    if "hub_id" in checkpoint:
        return f"Hub repo {checkpoint['hub_id']} at revision {checkpoint['revision']}"
    return f"an in-memory model (weights sha256 {checkpoint.get('weights_sha256', '?')[:12]})"


def _same_checkpoint(saved: dict, current: dict) -> bool:
    keys = ("sha256",) if "sha256" in current else ("hub_id", "revision", "weights_sha256")
    return all(saved.get(key) == current.get(key) for key in keys)


def identity_differences(saved: dict, current: dict) -> list[str]:
    """What differs between the identity recorded by a partial run and this run's, in words."""
    if not saved:
        return ["it was made by an older version of bel link that did not record its settings"]
    differences = []
    if current.get("checkpoint") is not None and not _same_checkpoint(
        saved.get("checkpoint", {}), current["checkpoint"]
    ):
        differences.append(
            f"the checkpoint differs (partial run: {_describe_checkpoint(saved.get('checkpoint', {}))}; "
            f"this run: {_describe_checkpoint(current['checkpoint'])})"
        )
    old, new = saved.get("options", {}), current["options"]
    differences += [f"{name} was {old.get(name)!r}, now {new[name]!r}" for name in new if old.get(name) != new[name]]
    if saved.get("world") != current["world"]:
        differences.append(f"it ran with {saved.get('world')} processes, this run with {current['world']}")
    return differences


def _refusal(settings: LinkSettings, state: dict, differences: list[str]) -> ValueError:
    original = state.get("command")
    resume = f"rerun the original command ({original})" if original else "rerun with the original settings"
    return ValueError(
        f"cannot resume {settings.output}: its partial run ({state.get('documents', 0)} documents linked) was made "
        f"differently: {'; '.join(differences)}. To resume it, {resume}; to discard it and start over, add "
        "--overwrite (overwrite=True in link_file)."
    )


def _input_changed(settings: LinkSettings, state: dict) -> ValueError:
    return _refusal(
        settings,
        state,
        [f"the first {state['read']} documents of {settings.input} differ from those it read (the input was changed)"],
    )


# ---------------------------------------------------------------------------------------------------- locking
class OutputLockedError(ValueError):
    """Another process holds the lock of this output (or shard)."""


@contextlib.contextmanager
def exclusive_lock(path: Path, output: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if needed, our PID written in it); refuse at once if another
    process holds it. The file is removed while still held, so a waiting process never locks a removed file."""
    handle = _acquire(path, output)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def _acquire(path: Path, output: Path) -> int:
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(handle, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(handle)
            raise OutputLockedError(
                f"{output} is being written by another process (PID {holder}, holding the lock {path}); wait for "
                "it to finish or stop it, then rerun this command (a killed process frees its lock by itself)."
            ) from None
        # the holder may have removed the file between our open and our flock: we then hold a lock nobody sees
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        opened = os.fstat(handle)
        if current is not None and (current.st_ino, current.st_dev) == (opened.st_ino, opened.st_dev):
            break
        os.close(handle)
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\n".encode("ascii"))
    return handle


def run_lock(settings: LinkSettings, rank: int = 0) -> contextlib.AbstractContextManager:
    """The whole-output lock `OUT.lock`, held by the main process (rank 0) for the whole run."""
    return exclusive_lock(settings.lock_path, settings.output) if rank == 0 else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------------- shard files
def _shard_paths(output: Path, rank: int, world: int) -> tuple[Path, Path]:
    work = output.with_name(f"{output.name}.part-{rank}-of-{world}.jsonl")
    return work, work.with_name(work.name + ".progress.json")


def _shard_lock(work: Path) -> Path:
    return work.with_name(work.name + ".lock")


def _other_runs(output: Path, world: int) -> list[Path]:
    """Work files and sidecars of this output left by runs with another number of processes."""
    pattern = glob.escape(str(output)) + ".part-*-of-*.jsonl*"
    found = []
    for name in glob.glob(pattern):
        match = re.search(r"\.part-\d+-of-(\d+)\.jsonl(\.progress\.json)?$", name)
        if match and int(match.group(1)) != world:
            found.append(Path(name))
    return sorted(found)


def _discard_shard(work: Path, sidecar: Path) -> None:
    sidecar.unlink(missing_ok=True)
    work.unlink(missing_ok=True)


def prepare_run(settings: LinkSettings, rank: int = 0, world: int = 1, overwrite: bool = False) -> None:
    """Before loading any model: start over when asked (this process's shard; the main process also removes work
    files of runs with another process count), else refuse a partial run that cannot be resumed by this one."""
    work, sidecar = _shard_paths(settings.output, rank, world)
    others = _other_runs(settings.output, world) if rank == 0 else []
    if overwrite:
        with exclusive_lock(_shard_lock(work), settings.output):
            _discard_shard(work, sidecar)
        for path in others:
            path.unlink(missing_ok=True)
        if rank == 0:
            settings.errors_path.unlink(missing_ok=True)
        return
    if others:
        worlds = sorted({re.search(r"-of-(\d+)\.jsonl", p.name).group(1) for p in others})
        raise ValueError(
            f"{settings.output} has a partial run made with {' and '.join(worlds)} process(es) ({others[0]}, ...); "
            f"resume it with that many processes, or add --overwrite (overwrite=True in link_file) to start over."
        )
    saved = _load_progress(sidecar)
    if saved is not None and settings.checkpoint is not None:
        differences = identity_differences(saved.get("identity", {}), settings.identity(world))
        if differences:
            raise _refusal(settings, saved, differences)


def _load_progress(sidecar: Path) -> dict | None:
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("%s is unreadable (%s); its shard is redone from the start", sidecar, error)
        return {}


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def verify_work_file(work: Path, state: dict) -> tuple[str | None, hashlib._Hash]:
    """Re-hash `work` up to the recorded bytes: (what is wrong or None, the running hash of those bytes)."""
    digest = hashlib.sha256()
    wanted, lines = state.get("bytes", 0), 0
    try:
        with open(work, "rb") as handle:
            while wanted - handle.tell() > 0:
                block = handle.read(min(1 << 20, wanted - handle.tell()))
                if not block:
                    break
                digest.update(block)
                lines += block.count(b"\n")
            read = handle.tell()
    except FileNotFoundError:
        return (f"its work file {work} is missing" if wanted else None), digest
    if read < wanted:
        return f"its work file {work} is shorter ({read} bytes) than recorded ({wanted} bytes)", digest
    if digest.hexdigest() != state.get("sha256"):
        return f"its work file {work} does not match its recorded sha256 (it was altered)", digest
    if lines != state.get("documents"):
        return f"its work file {work} holds {lines} records, {state.get('documents')} recorded", digest
    return None, digest


# ---------------------------------------------------------------------------------------------------- progress
def _fresh_state(settings: LinkSettings, world: int) -> dict:
    return {
        "version": PROGRESS_VERSION,
        "identity": settings.identity(world),
        "input": {"path": str(settings.input.resolve()), "size": settings.input.stat().st_size},
        "command": settings.command,
        "documents": 0,
        "bytes": 0,
        "sha256": _EMPTY_SHA256,
        "read": 0,
        "read_sha256": _EMPTY_SHA256,
        "done": False,
    }


def _start_state(settings: LinkSettings, work: Path, sidecar: Path, world: int) -> tuple[dict, hashlib._Hash]:
    """The state to continue from: the saved one when it is this run's and its work file is intact, else a fresh
    one (a different identity refuses; a damaged work file is redone with a warning)."""
    fresh = _fresh_state(settings, world)
    saved = _load_progress(sidecar)
    if not saved:  # none, or unreadable (warned): nothing to resume
        return fresh, hashlib.sha256()
    if saved.get("version") != PROGRESS_VERSION:
        raise _refusal(settings, saved, identity_differences({}, fresh["identity"]))
    differences = identity_differences(saved.get("identity", {}), fresh["identity"])
    if differences:
        raise _refusal(settings, saved, differences)
    problem, digest = verify_work_file(work, saved)
    if problem:
        logger.warning("%s: %s; redoing this shard from the start", sidecar, problem)
        return fresh, hashlib.sha256()
    if saved["input"]["size"] != fresh["input"]["size"]:
        logger.warning(
            "%s changed size since the partial run (%d -> %d bytes); its first %d documents are unchanged, resuming",
            settings.input,
            saved["input"]["size"],
            fresh["input"]["size"],
            saved["read"],
        )
    saved.update(command=saved.get("command") or settings.command, input=fresh["input"])
    saved.pop("stopped", None)
    return saved, digest
