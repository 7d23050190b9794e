"""Named datasets (``ncbi-disease``, ``bc5cdr`` and its ``bc5cdr-disease``/``bc5cdr-chemical`` parts) and their KBs.

``bc5cdr`` keeps both entity types (diseases and chemicals, both linked to MeSH), for one checkpoint that links both.
Each dataset also names the entity type of its mentions (:func:`entity_type`): NCBI Disease's four annotation classes
(``SpecificDisease``, ``DiseaseClass``, ``Modifier``, ``CompositeMention``) are all ``Disease``.

The data directory comes from the explicit argument, else the ``BEL_DATA_DIR`` environment variable, else
``<repo>/../shared/data`` when it exists. Layout expected inside it (as in ``shared/data``)::

    ncbi_disease/NCBI{train,develop,test}set_corpus.txt   ncbi_disease/medic_06Jul2012.txt
    bc5cdr/CDR_{Training,Development,Test}Set.PubTator.txt
    mesh/mesh2024_descriptors.txt.gz   mesh/mesh2024_tree_numbers.tsv.gz (optional: entity categories, see bel.kb)
"""

from __future__ import annotations

import os
from pathlib import Path

from bel.data.document import Document
from bel.data.pubtator import read_pubtator
from bel.kb import KnowledgeBase

DATASETS = ("ncbi-disease", "bc5cdr", "bc5cdr-disease", "bc5cdr-chemical")
SPLITS = ("train", "dev", "test")
DATA_DIR_ENV = "BEL_DATA_DIR"

_CORPUS_FILES = {
    "ncbi-disease": {
        "train": "ncbi_disease/NCBItrainset_corpus.txt",
        "dev": "ncbi_disease/NCBIdevelopset_corpus.txt",
        "test": "ncbi_disease/NCBItestset_corpus.txt",
    },
    "bc5cdr": {
        "train": "bc5cdr/CDR_TrainingSet.PubTator.txt",
        "dev": "bc5cdr/CDR_DevelopmentSet.PubTator.txt",
        "test": "bc5cdr/CDR_TestSet.PubTator.txt",
    },
}
_MENTION_TYPE = {"bc5cdr-disease": "Disease", "bc5cdr-chemical": "Chemical"}
KB_FILES = {"medic": "ncbi_disease/medic_06Jul2012.txt", "mesh": "mesh/mesh2024_descriptors.txt.gz"}
DEFAULT_KB = {"ncbi-disease": "medic", "bc5cdr": "mesh", "bc5cdr-disease": "mesh", "bc5cdr-chemical": "mesh"}
_NCBI_CLASSES = ("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention")
ENTITY_TYPES = {"ncbi-disease": dict.fromkeys(_NCBI_CLASSES, "Disease")}
"""Per dataset, the entity type of each annotation class (classes not listed are their own type)."""


def entity_type(dataset: str | None, annotation_type: str | None) -> str | None:
    """The entity type a detector learns for an annotation class of `dataset` (``SpecificDisease`` -> ``Disease``)."""
    return ENTITY_TYPES.get(dataset or "", {}).get(annotation_type, annotation_type)


def _default_data_dir() -> Path:
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve the data directory (argument, then ``$BEL_DATA_DIR``, then ``<repo>/../shared/data``)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_dir():
            raise FileNotFoundError(f"data directory {path} (given with --data-dir / data_dir=) does not exist")
        return path
    if os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV])
        if not path.is_dir():
            raise FileNotFoundError(f"data directory {path} (from ${DATA_DIR_ENV}) does not exist")
        return path
    path = _default_data_dir()
    if path.is_dir():
        return path
    raise FileNotFoundError(
        f"no data directory: pass --data-dir (data_dir=...) or set ${DATA_DIR_ENV}; the default {path} does not exist"
    )


def _check(name: str, split: str | None = None) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def corpus_path(name: str, split: str, data_dir_: str | os.PathLike | None = None) -> Path:
    """The PubTator file of ``name``/``split``."""
    _check(name, split)
    files = _CORPUS_FILES["ncbi-disease" if name == "ncbi-disease" else "bc5cdr"]
    return data_dir(data_dir_) / files[split]


def load_corpus(name: str, split: str, data_dir: str | os.PathLike | None = None) -> list[Document]:
    """Documents of a dataset split; BC5CDR keeps only Disease or Chemical mentions (relations are dropped)."""
    docs = read_pubtator(corpus_path(name, split, data_dir))
    keep = _MENTION_TYPE.get(name)
    if keep is not None:
        for doc in docs:
            doc.mentions = [m for m in doc.mentions if m.type == keep]
            doc.relations = []
    return docs


def kb_path(name: str, data_dir_: str | os.PathLike | None = None, kb: str | None = None) -> Path:
    """The KB file for dataset ``name`` (``kb`` overrides: ``"medic"`` or ``"mesh"``)."""
    _check(name)
    kb = kb or DEFAULT_KB[name]
    if kb not in KB_FILES:
        raise ValueError(f"unknown KB {kb!r}; choose one of {', '.join(KB_FILES)}")
    return data_dir(data_dir_) / KB_FILES[kb]


def load_kb(name: str, data_dir: str | os.PathLike | None = None, kb: str | None = None) -> KnowledgeBase:
    """The KB a dataset links to: MEDIC for ``ncbi-disease``, MeSH descriptors for ``bc5cdr-*``; ``kb="medic"``
    selects MEDIC for ``bc5cdr-disease``."""
    path = kb_path(name, data_dir, kb)
    return KnowledgeBase.from_medic(path) if (kb or DEFAULT_KB[name]) == "medic" else KnowledgeBase.from_mesh(path)
