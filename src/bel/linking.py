"""Streaming, resumable, shardable linking of corpus files (the logic behind `bel link`).

Flow: documents stream from the input (``txt``: one document per non-empty line, its id ``ID`` when the line is
``ID<TAB>text`` and ``FILENAME:LINE`` otherwise, or the whole file with the file's stem as id; ``pubtator``, ``bioc``,
``jsonl``: their given mentions are linked, every one of them) in batches through the pipeline. Process ``rank`` of
``world`` links documents ``i`` with ``i % world == rank`` and appends one JSON record per document to its work file
``OUT.part-RANK-of-WORLD.jsonl``; after each batch the file is fsynced and its progress sidecar (``.progress.json``) is
replaced atomically.

The sidecar records what produced the partial run (its *identity*: a fingerprint of the checkpoint -- sha256 of a local
directory's files, or the Hub id and revision --, every option that changes the output, the number of processes) and
how far it got: documents and bytes written, a running sha256 of the work file's bytes, and the number and running
sha256 of the input documents read. A restart checks the identity and refuses a different one (ValueError naming what
differs; ``overwrite=True`` / ``--overwrite`` starts over), re-reads the input prefix comparing its hash (so an input
fixed further down still resumes, one changed inside the prefix is refused), re-hashes the work file up to the
recorded bytes (a truncated or altered work file is redone from the start, with a warning), truncates what follows and
continues. When every shard is done the main process verifies each one again (hash and document count), merges them
in input order into a temporary file and renames it to ``OUT``: OUT is never half-written.

One output, one writer: the main process holds an exclusive ``flock`` on ``OUT.lock`` and every process one on its
shard's ``.lock`` file; a second run on the same output fails at once naming the lock and its PID. The kernel frees
the locks of a killed process, so a stale lock file never blocks a rerun.

Bad records: a record the reader cannot parse (``InvalidRecord``) or a document the pipeline refuses either stops the
run (``on_error="stop"``, the default: a ValueError naming the record; what was linked before it is kept, so a rerun
after fixing the file resumes) or is skipped (``on_error="skip"``): it is written to ``OUT.errors.jsonl`` (one JSON
object per bad record: index, id, location, message) instead of the output, and a warning gives the count.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bel.data.document import Document, InvalidRecord, Mention, Passage, Relation

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("txt", "pubtator", "bioc", "jsonl")
OUTPUT_FORMATS = ("jsonl", "pubtator", "bioc")
ON_ERROR = ("stop", "skip")
PROGRESS_VERSION = 2
_EMPTY_SHA256 = hashlib.sha256().hexdigest()
_EXTENSIONS = {
    ".txt": "txt",
    ".pubtator": "pubtator",
    ".pubtator.txt": "pubtator",
    ".xml": "bioc",
    ".json": "bioc",
    ".bioc": "bioc",
    ".jsonl": "jsonl",
}
# options of LinkSettings that change the output (batch_size does not: output is independent of it)
IDENTITY_OPTIONS = ("top_k", "txt_mode", "detect_mentions", "detector", "input_format", "output_format")
_TXT_ID = re.compile(r"^([^\s]+)\t")


@dataclass
class LinkSettings:
    model: str
    input: Path
    output: Path
    input_format: str
    output_format: str
    batch_size: int = 8
    top_k: int = 5
    txt_mode: str = "line"
    detect_mentions: bool = False
    detector: str = "auto"
    kb_file: Path | None = None
    on_error: str = "stop"
    command: str | None = None  # the command line that started the run, quoted in a refusal to resume
    checkpoint: dict | None = field(default=None, repr=False)  # filled once per run by `resolve_checkpoint`

    def resolve_checkpoint(self, linker=None) -> dict:
        """The checkpoint fingerprint (computed once per run; see `checkpoint_identity`)."""
        if self.checkpoint is None:
            self.checkpoint = checkpoint_identity(self.model, linker)
        return self.checkpoint

    def identity(self, world: int) -> dict:
        """What must match for a partial run to be resumed: checkpoint, output-changing options, process count."""
        options = {name: getattr(self, name) for name in IDENTITY_OPTIONS}
        options["kb_file"] = _file_sha256(self.kb_file) if self.kb_file else None
        return {"checkpoint": self.resolve_checkpoint(), "options": options, "world": world}

    @property
    def errors_path(self) -> Path:
        return self.output.with_name(self.output.name + ".errors.jsonl")

    @property
    def lock_path(self) -> Path:
        return self.output.with_name(self.output.name + ".lock")


def guess_format(path: Path, allowed: tuple[str, ...]) -> str:
    """The format named by `path`'s extension (`.txt`, `.pubtator`, `.xml`/`.json`/`.bioc`, `.jsonl`)."""
    name = path.name.lower()
    for extension, fmt in sorted(_EXTENSIONS.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(extension) and fmt in allowed:
            return fmt
    raise ValueError(
        f"cannot tell the format of {path} from its extension; pass --input-format/--output-format "
        f"({', '.join(allowed)})."
    )


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
        digest.update(_file_sha256(path).encode("ascii"))
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
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


# ---------------------------------------------------------------------------------------------------- reading
def iter_documents(
    path: Path, fmt: str, txt_mode: str = "line", errors: str = "raise"
) -> Iterator[Document | InvalidRecord]:
    """Stream the documents of `path`; non-UTF-8 input raises ValueError naming the file and line.

    With ``errors="collect"`` a record the reader cannot parse is yielded as an `InvalidRecord` in its place.
    """
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors={errors!r}: use 'raise' or 'collect'")
    try:
        if fmt == "txt":
            yield from _iter_txt(path, txt_mode, errors)
        elif fmt == "pubtator":
            from bel.data.pubtator import iter_pubtator

            yield from iter_pubtator(path, errors=errors)
        elif fmt == "jsonl":
            from bel.data.jsonl import iter_jsonl

            yield from iter_jsonl(path, errors=errors)
        elif fmt == "bioc":
            from bel.data.bioc_io import read_bioc

            yield from read_bioc(path, errors=errors)  # BioC readers parse the whole collection
        else:
            raise ValueError(f"unknown input format {fmt!r}; use one of {', '.join(INPUT_FORMATS)}.")
    except UnicodeDecodeError as error:
        raise ValueError(_utf8_message(path, error)) from None


def _iter_txt(path: Path, txt_mode: str, errors: str = "raise") -> Iterator[Document | InvalidRecord]:
    if txt_mode == "file":
        text = path.read_bytes().decode("utf-8")
        yield Document(id=path.stem, passages=[Passage("text", 0, text)])
        return
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                message = (
                    f"{path}:{line_no}: not valid UTF-8 (byte {raw[error.start]:#04x} at column "
                    f"{error.start + 1}); re-encode the file as UTF-8."
                )
                if errors == "raise":
                    raise ValueError(message) from None
                yield InvalidRecord(location=f"{path}:{line_no}", message=message)
                continue
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield _txt_line_document(line, f"{path.name}:{line_no}")


def _txt_line_document(line: str, default_id: str) -> Document:
    """`ID<TAB>text` keeps ID (no whitespace in it) as the document id; any other line is `FILENAME:LINE`."""
    match = _TXT_ID.match(line)
    if match:
        return Document(id=match.group(1), passages=[Passage("text", 0, line[match.end() :])])
    return Document(id=default_id, passages=[Passage("text", 0, line)])


def _utf8_message(path: Path, error: UnicodeDecodeError) -> str:
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return (
                    f"{path}:{line_no}: not valid UTF-8 (byte {raw[bad.start]:#04x} at column {bad.start + 1}); "
                    "re-encode the file as UTF-8."
                )
    return f"{path}: not valid UTF-8 ({error}); re-encode the file as UTF-8."


# ---------------------------------------------------------------------------------------------------- records
def pipeline_input(doc: Document, detect: bool) -> dict:
    text = doc.text
    item = {"text": text, "passages": [(p.offset, p.end) for p in sorted(doc.passages, key=lambda p: p.offset)]}
    if doc.mentions and not detect:
        item["mentions"] = [{"start": m.start, "end": m.end, "type": m.type} for m in doc.mentions]
    return item


def to_record(index: int, doc: Document, linked: list[dict]) -> dict:
    """One output record; each linked mention keeps its `type` (given in the input, or found by the detector)."""
    return {
        "index": index,
        "id": doc.id,
        "passages": [[p.type, p.offset, p.text] for p in doc.passages],
        "mentions": linked,
        "relations": [[r.type, *r.args] for r in doc.relations],
        "meta": doc.meta,
    }


def error_record(index: int, doc_id: str | None, location: str, message: str) -> dict:
    """The work-file record of a bad input record (merged into OUT.errors.jsonl, not into the output)."""
    return {"index": index, "id": doc_id, "error": {"location": location, "message": message}}


def to_document(record: dict) -> Document:
    """A linked Document: each mention's `ids` is its predicted id (empty for NIL)."""
    mentions = [
        Mention(
            start=m["start"],
            end=m["end"],
            text=m["text"],
            type=m.get("type"),
            ids=(m["entity_id"],) if m["entity_id"] else (),
        )
        for m in record["mentions"]
    ]
    return Document(
        id=record["id"],
        passages=[Passage(t, o, x) for t, o, x in record["passages"]],
        mentions=mentions,
        relations=[Relation(r[0], tuple(r[1:])) for r in record["relations"]],
        meta=record["meta"],
    )


def format_record(record: dict, fmt: str) -> str:
    if fmt == "jsonl":
        out = {"id": record["id"], "text": to_document(record).text, "mentions": record["mentions"]}
        return json.dumps(out, ensure_ascii=False) + "\n"
    if fmt == "pubtator":
        from bel.data.pubtator import format_document

        doc = to_document(record)
        doc.meta.setdefault("pubtator_blank_lines_after", 1)
        return format_document(doc)
    raise ValueError(f"unknown output format {fmt!r}")


def _canonical_bytes(item: Document | InvalidRecord, detect: bool) -> bytes:
    """What the run reads of one input record (everything that reaches the output), as canonical JSON."""
    if isinstance(item, InvalidRecord):
        content: dict = {"invalid": dataclasses.asdict(item)}
    else:
        record = to_record(0, item, [])
        del record["index"], record["mentions"]
        content = {"record": record, "input": pipeline_input(item, detect)}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8") + b"\n"


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


# ---------------------------------------------------------------------------------------------------- running
def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc only).

    Batches of varying tensor shapes fragment glibc's heap: measured over 5,000 abstracts, resident memory grew 20%
    without this call and 3% with it.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


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


@dataclass
class _Entry:
    index: int
    item: Document | InvalidRecord
    read: int  # input records read up to and including this one
    read_sha256: str


class _ShardWriter:
    """Links batches of entries and appends their records to the work file, committing progress after each."""

    def __init__(self, linker, settings, state, work_digest, handle, sidecar, bar, world) -> None:
        self.linker, self.settings, self.state = linker, settings, state
        self.digest, self.handle, self.sidecar, self.bar, self.world = work_digest, handle, sidecar, bar, world
        self.linked = 0  # documents linked by this process in this run
        self.skipped = 0

    def process(self, batch: list[_Entry]) -> None:
        """Link `batch` and commit its records; with on_error="stop", commit those before a refused document and
        raise ValueError naming it."""
        documents = [e for e in batch if isinstance(e.item, Document)]
        results = iter(self._link([e.item for e in documents]))
        records = []
        for entry in batch:
            if isinstance(entry.item, InvalidRecord):
                records.append(error_record(entry.index, entry.item.id, entry.item.location, entry.item.message))
                continue
            result = next(results)
            if isinstance(result, dict) and "error" in result:
                location = f"{self.settings.input}: document {entry.index} (counted from 0, id {entry.item.id!r})"
                if self.settings.on_error == "stop":
                    self.commit(batch[: len(records)], records)
                    raise self.stop(location, f"{location}: the pipeline refused it: {result['error']}")
                records.append(error_record(entry.index, entry.item.id, location, result["error"]))
                continue
            records.append(to_record(entry.index, entry.item, result))
        self.commit(batch, records)

    def _link(self, inputs: list[Document]) -> list:
        if not inputs:
            return []
        detect = self.settings.detect_mentions
        items = [pipeline_input(d, detect) for d in inputs]
        options = {"batch_size": self.settings.batch_size, "top_k": self.settings.top_k}
        options["detector"] = self.settings.detector
        return self.linker(items, errors="collect", **options)

    def commit(self, entries: list[_Entry], records: list[dict]) -> None:
        if not entries:
            return
        data = b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8") for r in records)
        self.handle.write(data)
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.digest.update(data)
        errors = sum("error" in r for r in records)
        self.skipped += errors
        self.linked += len(records) - errors
        self.state.update(
            documents=self.state["documents"] + len(records),
            bytes=self.handle.tell(),
            sha256=self.digest.hexdigest(),
            read=entries[-1].read,
            read_sha256=entries[-1].read_sha256,
        )
        _write_json_atomic(self.sidecar, self.state)
        self.bar.update(len(records) * self.world)

    def stop(self, location: str, message: str) -> ValueError:
        """The error that stops the run at a bad record (recorded in the sidecar, so other ranks stop too)."""
        self.state["stopped"] = message
        _write_json_atomic(self.sidecar, self.state)
        return ValueError(
            f"{message} -- stopped there; the {self.state['documents']} documents before it are linked and kept: fix "
            f"the record and rerun the same command to resume, or add --on-error skip to list bad records in "
            f"{self.settings.errors_path} and link the rest."
        )


def link_shard(
    linker,
    settings: LinkSettings,
    rank: int = 0,
    world: int = 1,
    progress: bool = True,
) -> Path:
    """Link this process's share of the input into its work file, resuming a matching partial run."""
    if settings.on_error not in ON_ERROR:
        raise ValueError(f"on_error={settings.on_error!r}: use one of {', '.join(ON_ERROR)}.")
    settings.resolve_checkpoint(linker)
    work, sidecar = _shard_paths(settings.output, rank, world)
    with exclusive_lock(_shard_lock(work), settings.output):
        state, work_digest = _start_state(settings, work, sidecar, world)
        if state["done"]:
            return work
        with open(work, "ab" if state["bytes"] else "wb") as handle:
            handle.truncate(state["bytes"])
        _write_json_atomic(sidecar, state)
        if state["documents"]:
            logger.info("rank %d: resuming after %d documents", rank, state["documents"])
        _link_rest(linker, settings, state, work_digest, work, sidecar, rank, world, progress)
    return work


def _link_rest(linker, settings, state, work_digest, work, sidecar, rank, world, progress) -> None:
    from tqdm.auto import tqdm

    resume_read, resume_digest = state["read"], state["read_sha256"]
    read_digest, read = hashlib.sha256(), 0
    bar = tqdm(desc="linking", unit="doc", disable=not progress or rank != 0, initial=state["documents"] * world)
    with open(work, "ab") as handle:
        writer = _ShardWriter(linker, settings, state, work_digest, handle, sidecar, bar, world)
        batch: list[_Entry] = []
        items = iter_documents(settings.input, settings.input_format, settings.txt_mode, errors="collect")
        for index, item in enumerate(items):
            if isinstance(item, InvalidRecord) and settings.on_error == "stop" and index >= resume_read:
                writer.process(batch)
                raise writer.stop(item.location, item.message)
            read_digest.update(_canonical_bytes(item, settings.detect_mentions))
            read = index + 1
            if read <= resume_read:
                if read == resume_read and read_digest.hexdigest() != resume_digest:
                    raise _input_changed(settings, state)
                continue
            if index % world != rank:
                continue
            batch.append(_Entry(index, item, read, read_digest.hexdigest()))
            if len(batch) >= settings.batch_size:
                writer.process(batch)
                batch = []
                release_freed_memory()
        if read < resume_read:
            raise _input_changed(settings, state)
        writer.process(batch)
    bar.close()
    state.update(done=True, read=read, read_sha256=read_digest.hexdigest())
    _write_json_atomic(sidecar, state)
    logger.info(
        "rank %d: linked %d documents in this run (%d were already linked before it)",
        rank,
        writer.linked,
        state["documents"] - writer.linked - writer.skipped,
    )


def _input_changed(settings: LinkSettings, state: dict) -> ValueError:
    return _refusal(
        settings,
        state,
        [f"the first {state['read']} documents of {settings.input} differ from those it read (the input was changed)"],
    )


def merge_shards(settings: LinkSettings, world: int, linker=None) -> Path:
    """Verify every shard (a damaged one is redone when `linker` is given, else RuntimeError), interleave them in input
    order into a temporary file, rename it to OUT, write OUT.errors.jsonl, and remove the work files."""
    states = [_checked_shard(settings, rank, world, linker) for rank in range(world)]
    paths = [_shard_paths(settings.output, rank, world) for rank in range(world)]
    locks = [exclusive_lock(_shard_lock(work), settings.output) for work, _ in paths]
    with contextlib.ExitStack() as stack:
        for lock in locks:
            stack.enter_context(lock)
        total, errors = _write_output(settings, world, [work for work, _ in paths], states)
        for work, sidecar in paths:
            _discard_shard(work, sidecar)
    if errors:
        logger.warning("%d bad input records were skipped; they are listed in %s", errors, settings.errors_path)
    logger.info("wrote %d documents to %s", total - errors, settings.output)
    return settings.output


def _checked_shard(settings: LinkSettings, rank: int, world: int, linker) -> dict:
    work, sidecar = _shard_paths(settings.output, rank, world)
    with exclusive_lock(_shard_lock(work), settings.output):
        state = _load_progress(sidecar) or {}
        if not state.get("done"):
            raise RuntimeError(f"shard {work} is not finished; rerun the same command to resume.")
        differences = identity_differences(state.get("identity", {}), settings.identity(world))
        if differences:
            raise _refusal(settings, state, differences)
        problem, _ = verify_work_file(work, state)
        if problem is None and work.stat().st_size != state["bytes"]:
            problem = f"its work file {work} has {work.stat().st_size - state['bytes']} bytes more than recorded"
        if problem is None:
            return state
        if linker is None:
            raise RuntimeError(f"shard {work}: {problem}; rerun the same command to redo it.")
        logger.warning("%s: %s; redoing this shard from the start", work, problem)
        _discard_shard(work, sidecar)
    link_shard(linker, settings, rank=rank, world=world, progress=False)
    return _checked_shard(settings, rank, world, None)


def _write_output(settings: LinkSettings, world: int, works: list[Path], states: list[dict]) -> tuple[int, int]:
    """Merge the verified shards into OUT (and OUT.errors.jsonl) via temporary files; (records, bad records)."""
    output = settings.output
    tmp = output.with_name(f"{output.stem}.tmp{output.suffix}")  # keeps the extension (BioC JSON vs XML)
    errors_tmp = settings.errors_path.with_name(settings.errors_path.name + ".tmp")
    counts = [0] * world
    errors, documents = 0, []
    try:
        with contextlib.ExitStack() as stack:
            handles = [stack.enter_context(open(work, encoding="utf-8")) for work in works]
            out = stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
            bad = stack.enter_context(open(errors_tmp, "w", encoding="utf-8"))
            index = 0
            while line := handles[index % world].readline():
                record = json.loads(line)
                if record["index"] != index:
                    raise RuntimeError(f"shard {works[index % world]} is out of order at document {index}.")
                counts[index % world] += 1
                if "error" in record:
                    bad.write(json.dumps({"index": index, "id": record["id"], **record["error"]}) + "\n")
                    errors += 1
                elif settings.output_format == "bioc":
                    documents.append(to_document(record))
                else:
                    out.write(format_record(record, settings.output_format))
                index += 1
            _check_counts(works, states, counts, index)
            for handle in (out, bad):
                handle.flush()
                os.fsync(handle.fileno())
        if settings.output_format == "bioc":
            from bel.data.bioc_io import write_bioc

            write_bioc(documents, tmp)
        os.replace(tmp, output)
        if errors:
            os.replace(errors_tmp, settings.errors_path)
        else:  # an errors file of an earlier run would describe another output
            errors_tmp.unlink()
            settings.errors_path.unlink(missing_ok=True)
    finally:
        tmp.unlink(missing_ok=True)
        errors_tmp.unlink(missing_ok=True)
    return index, errors


def _check_counts(works: list[Path], states: list[dict], counts: list[int], total: int) -> None:
    for work, state, count in zip(works, states, counts, strict=True):
        if count != state["documents"]:
            raise RuntimeError(f"shard {work} gave {count} records, {state['documents']} recorded; rerun to redo it.")
    if total != states[0].get("read", total):
        raise RuntimeError(f"the shards hold {total} documents but the input has {states[0]['read']}; rerun.")


def wait_for_shards(settings: LinkSettings, world: int, timeout: float = 24 * 3600) -> None:
    """Poll until every shard's progress file says done (used when no process group is available); a shard stopped
    at a bad record stops the wait with its error."""
    deadline = time.monotonic() + timeout
    for rank in range(world):
        _, sidecar = _shard_paths(settings.output, rank, world)
        while True:
            state = _load_progress(sidecar) or {}
            if state.get("stopped"):
                raise ValueError(f"process {rank} stopped: {state['stopped']}")
            if state.get("done"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"shard {rank} did not finish")
            time.sleep(0.2)


def link_file(
    linker,
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    batch_size: int = 8,
    top_k: int = 5,
    txt_mode: str = "line",
    detect_mentions: bool = False,
    detector: str = "auto",
    progress: bool = False,
    on_error: str = "stop",
    overwrite: bool = False,
) -> Path:
    """Link a whole file in this process (what `bel link` does with one process); returns the output path.

    `linker` is an [`EntityLinkingPipeline`] (e.g. from `bel.load_linker`); its checkpoint (the sha256 of its
    directory, or its Hub id and revision) is part of the identity a resumed run must match. `on_error`: "stop" (a
    bad record raises ValueError, progress kept) or "skip" (bad records go to `OUT.errors.jsonl`). `overwrite`
    discards a partial run of this output instead of resuming it.
    """
    source, target = Path(input), Path(output)
    settings = LinkSettings(
        model=str(getattr(linker.model, "name_or_path", "")),
        input=source,
        output=target,
        input_format=input_format or guess_format(source, INPUT_FORMATS),
        output_format=output_format or guess_format(target, OUTPUT_FORMATS),
        batch_size=batch_size,
        top_k=top_k,
        txt_mode=txt_mode,
        detect_mentions=detect_mentions,
        detector=detector,
        on_error=on_error,
    )
    with run_lock(settings):
        prepare_run(settings, overwrite=overwrite)
        link_shard(linker, settings, progress=progress)
        return merge_shards(settings, 1, linker=linker)


def is_disk_error(error: OSError) -> bool:
    """A full, read-only or forbidden disk: the user's to fix (reported without a traceback)."""
    return error.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT)
