"""The type filter: KB categories from MeSH tree numbers, retrieval restricted to a mention type's KB branch, saving
and loading the categories, and the pipeline and `build_examples` passing mention types to the search."""

from __future__ import annotations

import json

import pytest

from bel import load_linker
from bel.examples import build_examples, build_retriever
from bel.kb import Entity, KnowledgeBase
from bel.retrieval_bel import RETRIEVER_FILES, CandidateRetriever, find_retriever_files

from .helpers import TEXT, make_linker, save_tiny_encoder, tiny_retriever

# "anxiety" matches entities of three branches: F01 (behaviour), F03 (mental disorders), D27 (chemicals), and one
# without categories; sixty F01 decoys (120 rows) outrank the F03 entity, so a filtered top-k needs a wider search.
ENTITIES = [
    ("MESH:D001007", "Anxiety", ["anxiousness"], ("F01",)),
    ("MESH:D001008", "Anxiety Disorders", ["anxiety disorder", "anxiety states"], ("F03",)),
    ("MESH:D014151", "Anti-Anxiety Agents", ["anxiety agent", "anxiolytics"], ("D27",)),
    ("MESH:D999999", "Anxiety Neurosis", ["anxiety neuroses"], ()),
    ("MESH:D005334", "Fever", ["pyrexia"], ("C23", "G09")),
    *[(f"MESH:D1000{k:02d}", f"Anxiety {k}", [f"anxiety, type {k}"], ("F01",)) for k in range(60)],
]


def _kb() -> KnowledgeBase:
    return KnowledgeBase(Entity(i, name, tuple(syn), categories=cats) for i, name, syn, cats in ENTITIES)


def _retriever(kb: KnowledgeBase | None = None, **options) -> CandidateRetriever:
    return build_retriever(kb or _kb(), **options)


def _ids(candidates) -> list[str]:
    return [c.entity_id for c in candidates]


def _fields(results) -> list[list[tuple]]:
    return [[(c.entity_id, c.name, c.score, c.exact, c.alias) for c in found] for found in results]


def test_categories_come_from_the_tree_numbers_file_beside_mesh_descriptors(tmp_path):
    descriptors = tmp_path / "mesh_descriptors.txt"
    descriptors.write_text(
        "D001008||Anxiety Disorders|anxiety disorder\nD014151||Anti-Anxiety Agents\nD999999||No Tree Number\n",
        encoding="utf-8",
    )
    (tmp_path / "mesh_tree_numbers.tsv").write_text(
        "DescriptorUI\ttree_location\nD001008\tF03.080\nD001008\tC10.1\nD014151\tD27.505.696\nD000404\tA01.1\n",
        encoding="utf-8",
    )
    kb = KnowledgeBase.load(descriptors)
    assert kb["MESH:D001008"].categories == ("F03", "C10")
    assert kb["D014151"].categories == ("D27",)
    assert kb["MESH:D999999"].categories == ()  # no tree number: kept, never filtered
    assert kb.categories() == {"MESH:D001008": ("F03", "C10"), "MESH:D014151": ("D27",)}
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    (alone / "mesh_descriptors.txt").write_text(descriptors.read_text(encoding="utf-8"), encoding="utf-8")
    assert KnowledgeBase.load(alone / "mesh_descriptors.txt").categories() == {}


def test_a_typed_search_never_returns_another_branch_and_keeps_uncategorised_entities():
    retriever = _retriever()
    disease, chemical, untyped = retriever.search(["anxiety"] * 3, top_k=4, types=["Disease", "Chemical", None])
    assert "MESH:D001007" in _ids(untyped) and "MESH:D001008" not in _ids(untyped)  # outranked by F01 decoys
    assert set(_ids(disease)) == {"MESH:D001008", "MESH:D999999"}  # all the allowed and uncategorised ones
    assert set(_ids(chemical)) == {"MESH:D014151", "MESH:D999999"}
    # exact matches of a hidden entity are hidden too; the search widens until it has the top k
    many = retriever.search(["anxiety"], top_k=2, types=["Disease"])[0]
    assert _ids(many)[0] in {"MESH:D001008", "MESH:D999999"} and len(many) == 2
    assert not any(c.exact for c in many)


def test_no_type_or_an_unmapped_type_gives_the_results_of_a_search_without_types():
    retriever = _retriever()
    queries = ["anxiety", "fever", "anxiety disorder", "anxiolytics", "pyrexia"]
    plain = retriever.search(queries, top_k=5)
    assert _fields(retriever.search(queries, top_k=5, types=[None] * 5)) == _fields(plain)
    assert _fields(retriever.search(queries, top_k=5, types=["Gene"] * 5)) == _fields(plain)
    assert _fields(_retriever(KnowledgeBase(Entity(i, n, tuple(s)) for i, n, s, _ in ENTITIES)).search(queries, 5)) == (
        _fields(plain)
    )
    with pytest.raises(ValueError, match="one entry per mention"):
        retriever.search(queries, types=["Disease"])


def test_custom_type_categories_and_repeated_queries_of_different_types():
    retriever = _retriever().with_categories(_kb().categories(), {"Behaviour": ["F01"]})
    behaviour, disease = retriever.search(["anxiety", "anxiety"], top_k=30, types=["Behaviour", "Disease"])
    assert all(i.startswith("MESH:D1000") or i in ("MESH:D001007", "MESH:D999999") for i in _ids(behaviour))
    assert _fields([disease]) == _fields(retriever.search(["anxiety"], top_k=30))  # "Disease" unmapped here


def test_hybrid_search_filters_the_dense_rows_too(tmp_path):
    retriever = _retriever(dense_encoder=save_tiny_encoder(tmp_path / "encoder"))
    found = retriever.search(["anxiety", "fever", "anxiolytic"], top_k=6, types=["Disease", "Disease", "Chemical"])
    allowed = {"Disease": ("C", "F03"), "Chemical": ("D",)}
    categories = _kb().categories()
    for candidates, kind in zip(found, ["Disease", "Disease", "Chemical"], strict=True):
        assert candidates
        for c in candidates:
            codes = categories.get(c.entity_id, ())
            assert not codes or any(code.startswith(allowed[kind]) for code in codes)


def test_categories_survive_save_and_load(tmp_path):
    retriever = _retriever()
    retriever.save(tmp_path / "retriever")
    config = json.loads((tmp_path / "retriever" / "retriever_config.json").read_text(encoding="utf-8"))
    assert config["categories_file"] == "retriever_categories.json"
    loaded = CandidateRetriever.load(find_retriever_files(tmp_path))
    assert loaded.entity_categories == retriever.entity_categories
    assert loaded.type_categories == {"Disease": ("C", "F03"), "Chemical": ("D",)}
    types = ["Disease", "Chemical", None]
    assert _fields(loaded.search(["anxiety"] * 3, top_k=4, types=types)) == _fields(
        retriever.search(["anxiety"] * 3, top_k=4, types=types)
    )


def test_a_retriever_saved_without_categories_loads_and_searches_as_before(tmp_path):
    old = tiny_retriever()  # built without categories: the files of a retriever saved before the type filter
    old.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == set(RETRIEVER_FILES)
    loaded = CandidateRetriever.load(tmp_path)
    assert loaded.entity_categories == {} and loaded.type_categories == {}
    queries = ["fever", "breast cancer", "rash"]
    assert _fields(loaded.search(queries, top_k=4, types=["Disease"] * 3)) == _fields(old.search(queries, top_k=4))
    # categories attached afterwards (bel eval does so when the checkpoint's retriever indexes the evaluation KB)
    loaded.with_categories({"MESH:D005334": ["G09"], "MESH:D009369": ["C04"]})
    fever = loaded.search(["fever"], top_k=4, types=["Disease"])[0]
    assert "MESH:D005334" not in _ids(fever) and fever
    assert loaded.search(["fever"], top_k=4)[0][0].entity_id == "MESH:D005334"


def test_the_pipeline_passes_given_span_types_to_the_search(bert_tokenizer, tmp_path):
    directory = make_linker(bert_tokenizer, tmp_path / "linker")
    retriever = tiny_retriever().with_categories({"MESH:D005334": ["G09"], "MESH:D005076": ["C17"]})
    linker = load_linker(directory, retriever=retriever)
    start = TEXT.index("fever")
    spans = [{"start": start, "end": start + 5, "type": kind} for kind in ("Disease", None, "Chemical")]
    out = linker({"text": TEXT, "mentions": spans}, top_k=4, cascade=False)
    for mention, span in zip(out, spans, strict=True):
        expected = retriever.search(["fever"], top_k=4, types=[span["type"]])[0]
        assert mention["type"] == span["type"] and {c["id"] for c in mention["candidates"]} == set(_ids(expected))
    assert "MESH:D005334" not in {c["id"] for c in out[0]["candidates"]} | {c["id"] for c in out[2]["candidates"]}
    untyped = out[1]
    assert "MESH:D005334" in [c["id"] for c in untyped["candidates"]]
    unfiltered = linker({"text": TEXT, "mentions": spans[:1]}, top_k=4, cascade=False, type_filter=False)[0]
    assert unfiltered["candidates"] == untyped["candidates"]
    with pytest.raises(ValueError, match="type_filter must be True or False"):
        linker(TEXT, type_filter="yes")


def test_build_examples_with_types_filters_the_candidates_of_typed_mentions():
    from bel.data.document import Document, Mention, Passage

    mentions = [Mention(0, 7, "anxiety", "Disease", ("MESH:D001008",)), Mention(12, 19, "anxiety")]
    doc = Document("1", [Passage("title", 0, "anxiety and anxiety")], mentions)
    retriever = _retriever()
    typed = build_examples([doc], retriever, 4, types=[["Disease", None]])[0]
    plain = build_examples([doc], retriever, 4)[0]
    assert set(typed.candidate_ids[0]) == {"MESH:D001008", "MESH:D999999"}
    assert typed.candidate_ids[1] == plain.candidate_ids[1] == plain.candidate_ids[0]
