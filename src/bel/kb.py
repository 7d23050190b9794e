"""Knowledge-base loaders (MEDIC/BioSyn, MeSH, OBO, TSV, JSONL) into one :class:`KnowledgeBase`.

Ids are normalised with :func:`normalize_id` (``D012345`` -> ``MESH:D012345``). When a file lists the same id twice the
entries are merged: the first preferred name is kept and every further name becomes a synonym. Malformed lines raise
:class:`KBFormatError` naming the file and the 1-based line number; so does a file that gives no entity at all. OMIM's
``INCLUDED`` marker (in MEDIC synonyms) is removed from names, and the bare marker is not indexed as a name.

Entities may carry *categories*: the top-level MeSH tree codes of their tree numbers (``C10``, ``F03``, ``D02``), read
by :meth:`KnowledgeBase.from_mesh` from a ``*tree_numbers.tsv[.gz]`` file beside the descriptors (same name prefix), or
from a JSONL KB's optional ``categories`` list. The retriever uses them to keep a mention's candidates in the branch of
its entity type (``retrieval_bel.DEFAULT_TYPE_CATEGORIES``); an entity without categories is never filtered.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from bel.json_lines import json_kind, parse_object_line

_MESH_ID = re.compile(r"^[CD]\d{6,9}$")
# OMIM marks the titles of conditions it folds into an entry with ", INCLUDED"; MEDIC copies them into its synonyms,
# a few with the marker split off by a "|" as a name of its own.
_INCLUDED_MARKER = "INCLUDED"
_INCLUDED_SUFFIX = re.compile(r", INCLUDED(?=;|$)")  # ends a title; "TITLE, INCLUDED;SYMBOL" also occurs


class KBFormatError(ValueError):
    """A malformed knowledge-base line; the message names the file and line."""


def normalize_id(raw: str, default_prefix: str | None = None) -> str:
    """Normalise an entity id: strip whitespace, prefix bare MeSH ids with ``MESH:``, bare others with ``default_prefix``."""
    entity_id = raw.strip()
    if ":" in entity_id:
        prefix, local = entity_id.split(":", 1)
        prefix = prefix.strip().upper() if prefix.strip().lower() in ("mesh", "omim") else prefix.strip()
        return f"{prefix}:{local.strip()}"
    if _MESH_ID.match(entity_id):
        return f"MESH:{entity_id}"
    if default_prefix and entity_id:
        return f"{default_prefix}:{entity_id}"
    return entity_id


def _without_included_markers(names: Iterable[str]) -> list[str]:
    """Names with OMIM's ", INCLUDED" marker removed and the bare marker dropped (it is not a name).

    The titles before the marker name real variants of the condition (``ADENOCARCINOMA OF LUNG, INCLUDED`` under Lung
    Neoplasms, ``RUDS, INCLUDED``), so they are kept as synonyms; the bare ``INCLUDED`` entries (the marker split off
    by a ``|``) would make the word "included" link to a disease.
    """
    kept = (_INCLUDED_SUFFIX.sub("", name).strip() for name in names)
    return [name for name in kept if name and name != _INCLUDED_MARKER]


def _string_list(record: dict, key: str, where: str) -> tuple[str, ...]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        example = json.dumps(value) if isinstance(value, str) else '"..."'
        raise KBFormatError(
            f"{where}: {key!r} must be a list of strings, got {json.dumps(value)} ({json_kind(value)}); "
            f'write e.g. "{key}": [{example}]'
        )
    return tuple(dict.fromkeys(item.strip() for item in value if item.strip()))


def _jsonl_entity(line: str, where: str) -> Entity:
    record = parse_object_line(line, where, KBFormatError, "a JSON object with 'id' and 'name'")
    entity_id, name = record.get("id"), record.get("name")
    if isinstance(entity_id, bool) or not isinstance(entity_id, str | int) or not str(entity_id).strip():
        raise KBFormatError(f"{where}: 'id' must be a non-empty string, got {json.dumps(entity_id)}")
    if not isinstance(name, str) or not name.strip():
        raise KBFormatError(
            f"{where}: entity {entity_id!r} needs a 'name' that is a non-empty string, got {json.dumps(name)}"
        )
    entity_type = record.get("type")
    if entity_type is not None and not isinstance(entity_type, str):
        raise KBFormatError(f"{where}: 'type' must be a string or null, got {json.dumps(entity_type)}")
    return Entity(
        id=normalize_id(str(entity_id)),
        name=name.strip(),
        synonyms=_string_list(record, "synonyms", where),
        type=entity_type,
        alt_ids=tuple(normalize_id(a) for a in _string_list(record, "alt_ids", where)),
        categories=_string_list(record, "categories", where),
    )


def _require_entities(kb: KnowledgeBase, path: str | os.PathLike, expected: str) -> KnowledgeBase:
    """Refuse a KB file that gave no entity: linking against it could only ever predict nothing."""
    if not len(kb):
        raise KBFormatError(f"{path}: no entity found (the file is empty or not in the expected format: {expected})")
    return kb


@dataclass
class Entity:
    """A KB concept: its id, preferred name, synonyms, optional type, alternative ids and categories (top-level
    MeSH tree codes such as ``("C10", "F03")``; empty when unknown)."""

    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    type: str | None = None
    alt_ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()


def _open_text(path: str | os.PathLike) -> Iterator[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        yield from handle


def tree_numbers_file(descriptors: str | os.PathLike) -> Path | None:
    """The tree-numbers file beside a MeSH descriptors file, None when there is none: the name prefix before
    ``descriptors`` plus ``tree_numbers.tsv.gz`` or ``tree_numbers.tsv``
    (``mesh2024_descriptors.txt.gz`` -> ``mesh2024_tree_numbers.tsv.gz``)."""
    path = Path(descriptors)
    if "descriptors" not in path.name:
        return None
    prefix = path.name.split("descriptors", 1)[0]
    found = [path.with_name(f"{prefix}tree_numbers.tsv{suffix}") for suffix in (".gz", "")]
    return next((candidate for candidate in found if candidate.is_file()), None)


def read_tree_categories(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """``{MESH:id: top-level tree codes}`` from a ``DescriptorUI<TAB>tree_location`` TSV (header optional).

    A code is the first 3 characters of a tree number: ``D02.355.291`` -> ``D02``, ``F03.600`` -> ``F03``.
    """
    codes: dict[str, dict[str, None]] = {}
    for line_no, line in enumerate(_open_text(path), start=1):
        fields = line.rstrip("\r\n").split("\t")
        if not line.strip() or (line_no == 1 and fields[0].strip() == "DescriptorUI"):
            continue
        if len(fields) < 2 or not fields[0].strip() or len(fields[1].strip()) < 3:
            raise KBFormatError(f"{path}:{line_no}: expected 'DescriptorUI<TAB>tree number', got {line[:80]!r}")
        codes.setdefault(normalize_id(fields[0]), {})[fields[1].strip()[:3]] = None
    return {entity_id: tuple(found) for entity_id, found in codes.items()}


class KnowledgeBase:
    """An ordered collection of entities addressable by id or alternative id."""

    def __init__(self, entities: Iterable[Entity] = (), source: str | None = None) -> None:
        self.entities: list[Entity] = []
        self.source = source
        self._by_id: dict[str, int] = {}
        self._by_alt_id: dict[str, int] = {}
        for entity in entities:
            self.add(entity)

    def add(self, entity: Entity) -> None:
        """Add an entity, merging names and alt ids into an existing entry with the same id."""
        if entity.id in self._by_id:
            index = self._by_id[entity.id]
            old = self.entities[index]
            names = tuple(dict.fromkeys((*old.synonyms, entity.name, *entity.synonyms)))
            self.entities[index] = Entity(
                id=old.id,
                name=old.name,
                synonyms=tuple(n for n in names if n != old.name),
                type=old.type or entity.type,
                alt_ids=tuple(dict.fromkeys((*old.alt_ids, *entity.alt_ids))),
                categories=tuple(dict.fromkeys((*old.categories, *entity.categories))),
            )
        else:
            index = len(self.entities)
            self.entities.append(entity)
            self._by_id[entity.id] = index
        for alt in entity.alt_ids:
            self._by_alt_id.setdefault(alt, index)

    def _index_of(self, entity_id: str) -> int | None:
        for key in (entity_id, normalize_id(entity_id)):
            if key in self._by_id:
                return self._by_id[key]
            if key in self._by_alt_id:
                return self._by_alt_id[key]
        return None

    def __len__(self) -> int:
        return len(self.entities)

    def __getitem__(self, entity_id: str) -> Entity:
        index = self._index_of(entity_id)
        if index is None:
            raise KeyError(entity_id)
        return self.entities[index]

    def __contains__(self, entity_id: object) -> bool:
        return isinstance(entity_id, str) and self._index_of(entity_id) is not None

    def __iter__(self) -> Iterator[Entity]:
        return iter(self.entities)

    def canonical_id(self, entity_id: str) -> str | None:
        """The primary id of the entity known by ``entity_id`` (itself or an alt id), or None if unknown."""
        index = self._index_of(entity_id)
        return None if index is None else self.entities[index].id

    def categories(self) -> dict[str, tuple[str, ...]]:
        """``{entity id: categories}`` of the entities that have categories (empty when the KB has none)."""
        return {entity.id: entity.categories for entity in self.entities if entity.categories}

    def set_categories(self, categories: dict[str, Iterable[str]]) -> int:
        """Add ``categories[id]`` to the entities known by those ids (alt ids too); returns how many were found."""
        found = 0
        for entity_id, codes in categories.items():
            index = self._index_of(entity_id)
            if index is not None:
                entity = self.entities[index]
                merged = tuple(dict.fromkeys((*entity.categories, *codes)))
                self.entities[index] = replace(entity, categories=merged)
                found += 1
        return found

    def names(self) -> list[tuple[str, str, bool]]:
        """``(entity_id, name, is_preferred)`` for every name and synonym, deduplicated per entity."""
        rows: list[tuple[str, str, bool]] = []
        for entity in self.entities:
            rows.append((entity.id, entity.name, True))
            rows.extend((entity.id, s, False) for s in dict.fromkeys(entity.synonyms) if s and s != entity.name)
        return rows

    # ------------------------------------------------------------------ loaders
    @classmethod
    def from_biosyn(cls, path: str | os.PathLike, entity_type: str | None = None) -> KnowledgeBase:
        """``ids||name|synonym|...`` lines (MEDIC, BioSyn dictionaries, the MeSH descriptor file; ``.gz`` allowed).

        The first id is the entity id, further ids are alt ids; bare MeSH ids get ``MESH:``, bare numbers ``OMIM:``
        (MEDIC has 1,362 lines whose first id is an OMIM number, e.g. ``215600|C566123||Cirrhosis, Familial``).
        """
        kb = cls(source=str(path))
        for line_no, line in enumerate(_open_text(path), start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if "||" not in line:
                raise KBFormatError(f"{path}:{line_no}: expected 'ids||name|synonym...', got {line[:80]!r}")
            id_field, name_field = line.split("||", 1)
            ids = [i for i in id_field.split("|") if i.strip()]
            names = _without_included_markers(n.strip() for n in name_field.split("|"))
            if not ids:
                raise KBFormatError(f"{path}:{line_no}: missing id")
            if not names:
                raise KBFormatError(f"{path}:{line_no}: entity {ids[0]!r} has an empty name")
            kb.add(
                Entity(
                    id=normalize_id(ids[0], default_prefix="OMIM"),
                    name=names[0],
                    synonyms=tuple(dict.fromkeys(names[1:])),
                    type=entity_type,
                    alt_ids=tuple(normalize_id(i, default_prefix="OMIM") for i in ids[1:]),
                )
            )
        return _require_entities(kb, path, "'ids||name|synonym...' lines")

    @classmethod
    def from_medic(cls, path: str | os.PathLike) -> KnowledgeBase:
        """MEDIC (CTD diseases) in the BioSyn ``MeSH-id[|OMIM...]||name|synonym...`` form."""
        return cls.from_biosyn(path, entity_type="Disease")

    @classmethod
    def from_mesh(cls, path: str | os.PathLike) -> KnowledgeBase:
        """MeSH descriptors with entry terms, ``D000001||Calcimycin|A-23187|...`` (gzipped or plain).

        Categories come from the tree-numbers file beside it when there is one (:func:`tree_numbers_file`).
        """
        kb = cls.from_biosyn(path)
        trees = tree_numbers_file(path)
        if trees is not None:
            kb.set_categories(read_tree_categories(trees))
        return kb

    @classmethod
    def from_obo(cls, path: str | os.PathLike) -> KnowledgeBase:
        """OBO ontology ``[Term]`` stanzas: id, name, synonym "..." SCOPE [], alt_id; obsolete terms are skipped."""
        kb = cls(source=str(path))
        stanza: dict[str, list[str]] | None = None
        stanza_line = 0

        def flush() -> None:
            if stanza is None or stanza.get("is_obsolete", ["false"])[0].strip() == "true":
                return
            if not stanza.get("id"):
                raise KBFormatError(f"{path}:{stanza_line}: [Term] without id")
            if not stanza.get("name") or not stanza["name"][0].strip():
                raise KBFormatError(f"{path}:{stanza_line}: term {stanza['id'][0]!r} has an empty name")
            kb.add(
                Entity(
                    id=stanza["id"][0].strip(),
                    name=stanza["name"][0].strip(),
                    synonyms=tuple(stanza.get("synonym", ())),
                    alt_ids=tuple(a.strip() for a in stanza.get("alt_id", ())),
                )
            )

        for line_no, line in enumerate(_open_text(path), start=1):
            line = line.strip()
            if not line or line.startswith("!"):
                continue
            if line.startswith("["):
                flush()
                stanza, stanza_line = ({} if line == "[Term]" else None), line_no
                continue
            if stanza is None:
                continue
            if ":" not in line:
                raise KBFormatError(f"{path}:{line_no}: expected 'tag: value', got {line[:80]!r}")
            tag, value = (part.strip() for part in line.split(":", 1))
            if tag == "synonym":
                match = re.match(r'^"((?:[^"\\]|\\.)*)"', value)
                if not match:
                    raise KBFormatError(f"{path}:{line_no}: malformed synonym {value[:80]!r}")
                value = match.group(1).replace('\\"', '"')
            stanza.setdefault(tag, []).append(value)
        flush()
        return _require_entities(kb, path, "'[Term]' stanzas with 'id:' and 'name:'")

    @classmethod
    def from_tsv(cls, path: str | os.PathLike) -> KnowledgeBase:
        """``id<TAB>name[<TAB>synonym|synonym...]`` lines; a first line ``id<TAB>name...`` is a header."""
        kb = cls(source=str(path))
        for line_no, line in enumerate(_open_text(path), start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or (line_no == 1 and line.lower().startswith("id\t")):
                continue
            fields = line.split("\t")
            if len(fields) < 2 or not fields[0].strip():
                raise KBFormatError(f"{path}:{line_no}: expected 'id<TAB>name[<TAB>synonyms]', got {line[:80]!r}")
            if not fields[1].strip():
                raise KBFormatError(f"{path}:{line_no}: entity {fields[0]!r} has an empty name")
            synonyms = [s.strip() for s in fields[2].split("|") if s.strip()] if len(fields) > 2 else []
            kb.add(Entity(id=normalize_id(fields[0]), name=fields[1].strip(), synonyms=tuple(synonyms)))
        return _require_entities(kb, path, "'id<TAB>name[<TAB>synonym|synonym...]' lines")

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike) -> KnowledgeBase:
        """One JSON object per line: ``{"id", "name", "synonyms"?, "type"?, "alt_ids"?}``.

        Types are checked, not coerced: ``id`` a string (or integer), ``name`` a non-empty string, ``synonyms`` and
        ``alt_ids`` lists of strings, ``type`` a string or null. A string ``synonyms`` is refused rather than read as
        one synonym: whether ``"A|B"`` or ``"A; B"`` is one name or two cannot be told, and a wrong guess is silent.
        """
        kb = cls(source=str(path))
        for line_no, line in enumerate(_open_text(path), start=1):
            if line.strip():
                kb.add(_jsonl_entity(line, f"{path}:{line_no}"))
        return _require_entities(kb, path, 'one JSON object per line: {"id": ..., "name": ..., "synonyms": [...]}')

    @classmethod
    def load(cls, path: str | os.PathLike, format: str | None = None) -> KnowledgeBase:
        """Load a KB, choosing the format from ``format`` or the extension (.obo, .tsv, .jsonl, else BioSyn ``||``)."""
        name = Path(path).name.lower().removesuffix(".gz")
        fmt = format or next((f for f in ("obo", "tsv", "jsonl") if name.endswith("." + f)), None)
        if fmt is None:
            fmt = "mesh" if "mesh" in name else "medic"
        loaders = {
            "obo": cls.from_obo,
            "tsv": cls.from_tsv,
            "jsonl": cls.from_jsonl,
            "medic": cls.from_medic,
            "mesh": cls.from_mesh,
            "biosyn": cls.from_biosyn,
        }
        if fmt not in loaders:
            raise ValueError(f"unknown KB format {fmt!r}; choose one of {sorted(loaders)}")
        return loaders[fmt](path)
