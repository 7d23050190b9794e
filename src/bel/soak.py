"""Resident-memory soak of `bel link`: generated abstracts linked in one process, RSS sampled as documents go by."""

from __future__ import annotations

import random
import resource
import time
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
    """Wraps a linker: counts documents and records (documents done, RSS MB, seconds) after each call."""

    linker: object
    samples: list[tuple[int, float, float]] = field(default_factory=list)
    documents: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, inputs, *args, **kwargs):
        result = self.linker(inputs, *args, **kwargs)
        self.documents += len(inputs) if isinstance(inputs, list) else 1
        self.samples.append((self.documents, resident_mb(), time.perf_counter() - self.started))
        return result

    def __getattr__(self, name: str):
        return getattr(self.linker, name)

    def growth(self, window: int = 1000) -> tuple[float, float, float]:
        """Median RSS over the first and the last `window` documents, and the relative growth between them."""
        first = sorted(rss for done, rss, _ in self.samples if done <= window)
        last = sorted(rss for done, rss, _ in self.samples if done > self.documents - window)
        a, b = first[len(first) // 2], last[len(last) // 2]
        return a, b, (b - a) / a
