"""Memory soak of `bel link`: generated abstracts linked in one process, resident memory (and, while `tracemalloc`
traces, the Python heap) sampled after every pipeline call.

Two measures: `RssRecorder.growth` (relative RSS growth between the first and the last documents: catches gross
growth, native or Python, but a leak of a few hundred bytes per document hides in allocator noise) and
`RssRecorder.heap_bytes_per_document` (the least-squares slope of the traced Python heap over the documents: a run that
keeps one object per document -- its record, its text -- grows by at least that object's size per document, while a
warmed-up run stays flat to within tens of bytes).
"""

from __future__ import annotations

import gc
import random
import resource
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

WORDS = [
    "patients",
    "with",
    "the",
    "of",
    "and",
    "in",
    "was",
    "were",
    "a",
    "study",
    "cohort",
    "treatment",
    "showed",
    "increased",
    "risk",
    "reported",
    "clinical",
    "analysis",
    "group",
    "years",
    "associated",
    "significant",
    "levels",
    "response",
]


def write_abstracts(path: Path, count: int, names: list[str], seed: int = 0, sentences: int = 8) -> Path:
    """Write `count` generated abstracts, one per line, each mixing filler words with KB names (so mentions are found)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(count):
            parts = []
            for _ in range(sentences):
                words = rng.choices(WORDS, k=rng.randint(8, 20))
                for _ in range(rng.randint(0, 3)):
                    words.insert(rng.randrange(len(words) + 1), rng.choice(names))
                parts.append(" ".join(words).capitalize() + ".")
            handle.write(" ".join(parts) + "\n")
    return path


def resident_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class RssRecorder:
    """Wraps a linker: counts documents and records (documents done, RSS MB, seconds, traced Python heap bytes or 0
    when tracemalloc is off) after each call."""

    linker: object
    samples: list[tuple[int, float, float, int]] = field(default_factory=list)
    documents: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, inputs, *args, **kwargs):
        result = self.linker(inputs, *args, **kwargs)
        self.documents += len(inputs) if isinstance(inputs, list) else 1
        heap = 0
        if tracemalloc.is_tracing():
            gc.collect()  # garbage cycles awaiting the collector are not growth (they make a slow saw-tooth)
            heap = tracemalloc.get_traced_memory()[0]
        self.samples.append((self.documents, resident_mb(), time.perf_counter() - self.started, heap))
        return result

    def __getattr__(self, name: str):
        return getattr(self.linker, name)

    def growth(self, window: int = 1000) -> tuple[float, float, float]:
        """Median RSS over the first and the last `window` documents, and the relative growth between them."""
        first = sorted(sample[1] for sample in self.samples if sample[0] <= window)
        last = sorted(sample[1] for sample in self.samples if sample[0] > self.documents - window)
        a, b = first[len(first) // 2], last[len(last) // 2]
        return a, b, (b - a) / a

    def heap_bytes_per_document(self, after: int = 0) -> float:
        """Least-squares slope of the traced Python heap (bytes) over the documents done, from the samples taken
        after `after` documents (tracemalloc must trace while linking)."""
        points = [(done, heap) for done, _, _, heap in self.samples if done > after]
        if len(points) < 3:
            raise ValueError(f"{len(points)} samples after {after} documents: too few for a slope; link more")
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
