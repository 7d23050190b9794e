"""Abbreviation definitions (Schwartz & Hearst) and their expansion in retrieval queries, training and the pipeline."""

from __future__ import annotations

import pytest

from bel.abbreviations_bel import expand_abbreviations, find_abbreviations
from bel.data.document import Document, Mention, Passage
from bel.examples import build_examples
from bel.retrieval_bel import CandidateRetriever

TEXT = (
    "Myotonic dystrophy (DM) is the most common adult muscular dystrophy. The adenomatous polyposis coli (APC) "
    "gene and spinocerebellar ataxia type 1 (SCA1) were studied; ataxia-telangiectasia (A-T) was not "
    "(p < 0.05, see Fig. 1). Congenital myotonic dystrophy (CDM) is severe. DM (dystrophia myotonica type 1) "
    "and heart failure (HF)."
)


def test_definitions_in_order_initials_and_reverse_forms() -> None:
    found = find_abbreviations(TEXT)
    assert found == {
        "DM": "Myotonic dystrophy",  # letters out of order (Latin "dystrophia myotonica"): the initials rule
        "APC": "adenomatous polyposis coli",
        "SCA1": "spinocerebellar ataxia type 1",
        "A-T": "ataxia-telangiectasia",
        "CDM": "Congenital myotonic dystrophy",
        "HF": "heart failure",
    }  # first definition of DM wins; "(p < 0.05, ...)" defines nothing


@pytest.mark.parametrize("text", ["No parentheses at all.", "A value (12) and (x).", "(DM) opens the text.", ""])
def test_no_definition(text: str) -> None:
    assert find_abbreviations(text) == {}


def test_short_form_after_its_definition_in_parentheses() -> None:
    assert find_abbreviations("Patients with HF (heart failure) were seen.") == {"HF": "heart failure"}
    assert find_abbreviations("In the (tumour host) setting, the (tumour) grows.") == {}  # no upper-case short form


@pytest.mark.parametrize(
    ("mention", "expanded"),
    [
        ("DM", "Myotonic dystrophy"),
        ("DMs", "Myotonic dystrophy"),
        ("maternal SCA1 type", "maternal spinocerebellar ataxia type 1 type"),
        ("APC-associated tumours", "adenomatous polyposis coli-associated tumours"),
        ("A-T", "ataxia-telangiectasia"),
        ("Myotonic dystrophy (DM)", "Myotonic dystrophy"),
        ("ADM", "ADM"),  # a short form inside another word is left alone
        ("dm", "dm"),  # short forms keep their case
        ("(DM)", "(Myotonic dystrophy)"),  # nothing would be left after dropping the parenthesis: expand instead
    ],
)
def test_expansion(mention: str, expanded: str) -> None:
    assert expand_abbreviations(mention, find_abbreviations(TEXT)) == expanded


def test_expansion_without_definitions_is_identity() -> None:
    assert expand_abbreviations("DM", {}) == "DM"


def _retriever() -> CandidateRetriever:
    rows = [
        ("D009223", "Myotonic Dystrophy"),
        ("D006333", "Heart Failure"),
        ("D003924", "Diabetes Mellitus, Type 2"),
        ("D003920", "Diabetes Mellitus"),
        ("D003920", "DM"),
    ]
    return CandidateRetriever.build([r[0] for r in rows], [r[1] for r in rows])


def _document() -> Document:
    text = "Myotonic dystrophy (DM) is inherited. DM patients develop heart failure."
    start = text.index("DM patients")
    mention = Mention(start, start + 2, "DM", "Disease", ("D009223",))
    return Document("doc1", [Passage("abstract", 0, text)], [mention])


def test_training_and_evaluation_examples_query_the_long_form() -> None:
    retriever, doc = _retriever(), _document()
    expanded = build_examples([doc], retriever, 2, kb=None)[0]
    as_written = build_examples([doc], retriever, 2, kb=None, abbreviations=False)[0]
    assert expanded.candidate_ids[0][0] == "D009223"  # "DM" -> "Myotonic dystrophy", an exact match
    assert as_written.candidate_ids[0][0] == "D003920"  # the KB's own "DM" is Diabetes Mellitus
    assert doc.text[slice(*expanded.input.mentions[0])] == "DM"  # the model still sees the mention as written
