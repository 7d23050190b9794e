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
import errno
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bel.data.document import Document, InvalidRecord
from bel.link_records import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    _canonical_bytes,
    error_record,
    format_record,  # looked up here at merge time (tests replace bel.linking.format_record)
    guess_format,
    iter_documents,
    pipeline_input,
    to_document,
    to_record,
)
from bel.link_state import (
    PROGRESS_VERSION,
    OutputLockedError,
    _discard_shard,
    _input_changed,
    _load_progress,
    _refusal,
    _shard_lock,
    _shard_paths,
    _start_state,
    _write_json_atomic,
    checkpoint_identity,
    directory_sha256,
    exclusive_lock,
    file_sha256,
    identity_differences,
    prepare_run,
    run_lock,
    verify_work_file,
)

__all__ = [
    "IDENTITY_OPTIONS",
    "INPUT_FORMATS",
    "ON_ERROR",
    "OUTPUT_FORMATS",
    "PROGRESS_VERSION",
    "LinkSettings",
    "OutputLockedError",
    "checkpoint_identity",
    "directory_sha256",
    "error_record",
    "exclusive_lock",
    "format_record",
    "guess_format",
    "identity_differences",
    "is_disk_error",
    "iter_documents",
    "link_file",
    "link_shard",
    "merge_shards",
    "pipeline_input",
    "prepare_run",
    "release_freed_memory",
    "run_lock",
    "to_document",
    "to_record",
    "verify_work_file",
    "wait_for_shards",
]

logger = logging.getLogger(__name__)

ON_ERROR = ("stop", "skip")
# options of LinkSettings that change the output (batch_size does not: output is independent of it)
IDENTITY_OPTIONS = (
    "top_k",
    "txt_mode",
    "detect_mentions",
    "detector",
    "deterministic",
    "cascade",
    "repeated_names",
    "backend",
    "input_format",
    "output_format",
)


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
    deterministic: bool = False  # batch-independent scoring: byte-identical output whatever the batch size
    cascade: bool | None = None  # None: the checkpoint's config.cascade
    repeated_names: str | None = None  # None: the checkpoint's config.repeated_names
    backend: str = "torch"  # the linker's backend (torch, int8, onnx): set from the linker
    kb_file: Path | None = None
    on_error: str = "stop"
    command: str | None = None  # the command line that started the run, quoted in a refusal to resume
    checkpoint: dict | None = field(default=None, repr=False)  # filled once per run by `resolve_checkpoint`
    kb_sha256: str | None = field(default=None, repr=False)  # filled once per run by `identity`
    # seconds per step of the run, accumulated: read, link (the pipeline calls), write (work file), merge; a few
    # perf_counter calls per batch (bel.profiling splits `link` further with the pipeline's own stage_seconds)
    stage_seconds: dict[str, float] = field(default_factory=dict, repr=False)

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def resolve_checkpoint(self, linker=None) -> dict:
        """The checkpoint fingerprint (computed once per run; see `checkpoint_identity`)."""
        if self.checkpoint is None:
            self.checkpoint = checkpoint_identity(self.model, linker)
        return self.checkpoint

    def identity(self, world: int) -> dict:
        """What must match for a partial run to be resumed: checkpoint, output-changing options, process count."""
        options = {name: getattr(self, name) for name in IDENTITY_OPTIONS}
        if self.kb_file and self.kb_sha256 is None:  # hashed once per run: a MeSH file is hundreds of MB
            self.kb_sha256 = file_sha256(self.kb_file)
        options["kb_file"] = self.kb_sha256
        return {"checkpoint": self.resolve_checkpoint(), "options": options, "world": world}

    @property
    def errors_path(self) -> Path:
        return self.output.with_name(self.output.name + ".errors.jsonl")

    @property
    def lock_path(self) -> Path:
        return self.output.with_name(self.output.name + ".lock")


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
        started = time.perf_counter()
        results = iter(self._link([e.item for e in documents]))
        self.settings.add_seconds("link", time.perf_counter() - started)
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
        options["deterministic"] = self.settings.deterministic
        if self.settings.cascade is not None:
            options["cascade"] = self.settings.cascade
        if self.settings.repeated_names is not None:
            options["repeated_names"] = self.settings.repeated_names
        return self.linker(items, errors="collect", **options)

    def commit(self, entries: list[_Entry], records: list[dict]) -> None:
        if not entries:
            return
        started = time.perf_counter()
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
        self.settings.add_seconds("write", time.perf_counter() - started)

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
        # reading (parsing and hashing the input) is the loop's time outside the batches' linking and writing
        loop_started, processed = time.perf_counter(), _processing_seconds(settings)
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
        loop_seconds = time.perf_counter() - loop_started
        settings.add_seconds("read", loop_seconds - (_processing_seconds(settings) - processed))
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


def _processing_seconds(settings: LinkSettings) -> float:
    """Seconds spent so far linking batches and writing their records."""
    return settings.stage_seconds.get("link", 0.0) + settings.stage_seconds.get("write", 0.0)


# ---------------------------------------------------------------------------------------------------- merging
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
    deterministic: bool = False,
    cascade: bool | None = None,
    repeated_names: str | None = None,
    progress: bool = False,
    on_error: str = "stop",
    overwrite: bool = False,
    stage_seconds: dict[str, float] | None = None,
) -> Path:
    """Link a whole file in this process (what `bel link` does with one process); returns the output path.

    `linker` is an [`EntityLinkingPipeline`] (e.g. from `bel.load_linker`); its checkpoint (the sha256 of its
    directory, or its Hub id and revision) is part of the identity a resumed run must match. `on_error`: "stop" (a
    bad record raises ValueError, progress kept) or "skip" (bad records go to `OUT.errors.jsonl`). `overwrite`
    discards a partial run of this output instead of resuming it. `deterministic`: scores independent of the batch
    (byte-identical output whatever `batch_size`, about 1.2x the time; see the pipeline's parameter). `cascade`:
    link unique exact matches without reranking (None: the checkpoint's `config.cascade`). `repeated_names`: what
    the reranker does with a document's repeated names (`bel.consistency_bel`; None: `config.repeated_names`).
    `stage_seconds`, when given, accumulates the run's seconds per step: `read`, `link` (the pipeline's calls), `write` (the work file) and
    `merge` (verifying the work file and writing OUT); see `bel.profiling`.
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
        deterministic=deterministic,
        cascade=cascade,
        repeated_names=repeated_names,
        backend=getattr(linker, "backend", "torch"),
        on_error=on_error,
    )
    if stage_seconds is not None:
        settings.stage_seconds = stage_seconds
    with run_lock(settings):
        prepare_run(settings, overwrite=overwrite)
        link_shard(linker, settings, progress=progress)
        started = time.perf_counter()
        merged = merge_shards(settings, 1, linker=linker)
        settings.add_seconds("merge", time.perf_counter() - started)
        return merged


def is_disk_error(error: OSError) -> bool:
    """A full, read-only or forbidden disk: the user's to fix (reported without a traceback)."""
    return error.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT)
