"""The one sentence splitter (`bel.sentences_bel`): rules, mentions never cut, passages never crossed, linear time."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bel.data.pubtator import read_pubtator
from bel.sentences_bel import document_sentences, sentence_spans

NCBI_FIXTURE = Path(__file__).parent / "fixtures" / "bel_mini_ncbi.pubtator"


def test_sentence_spans_basic_and_region() -> None:
    text = "Mr. Smith has breast cancer. It spread.  Dr. X saw it (e.g. twice). 2 days later: fever. "
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Mr. Smith has breast cancer.",
        "It spread.",
        "Dr. X saw it (e.g. twice).",
        "2 days later: fever.",
    ]
    prefixed = "Title. " + text
    assert sentence_spans(prefixed, start=7) == [(a + 7, b + 7) for a, b in spans]


def test_sentence_spans_never_cut_a_mention() -> None:
    text = "Mr. Smith has breast cancer. It spread. Dr. X saw it."
    cut = (text.index("cancer"), text.index("spread") + 6)
    spans = sentence_spans(text, [cut])
    assert [text[a:b] for a, b in spans] == ["Mr. Smith has breast cancer. It spread.", "Dr. X saw it."]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["Dr. A saw it.", "Cancer grew!", "Is it bad?", "e.g. this one", "  ", "x.y. Z", "\n", "Ünïcödé."]
        ),
        min_size=1,
        max_size=8,
    ),
    st.data(),
)
def test_sentence_spans_properties(parts: list[str], data: st.DataObject) -> None:
    text = " ".join(parts)
    mentions = []
    if len(text) > 2:
        start = data.draw(st.integers(0, len(text) - 2))
        mentions = [(start, data.draw(st.integers(start + 1, len(text))))]
    spans = sentence_spans(text, mentions)
    covered = set()
    for start, end in spans:
        assert not text[start].isspace() and not text[end - 1].isspace()
        covered.update(range(start, end))
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())
    assert all(a < b <= c for (a, b), (c, _) in zip(spans, spans[1:], strict=False))
    for m_start, m_end in mentions:
        if text[m_start:m_end].strip():
            assert sum(1 for a, b in spans if a < m_end and m_start < b) == 1


def test_document_sentences_stay_inside_passages() -> None:
    for doc in read_pubtator(NCBI_FIXTURE):
        mentions = [(m.start, m.end) for m in doc.mentions]
        spans = document_sentences(doc.text, mentions, [(p.offset, p.end) for p in doc.passages])
        for start, end in spans:
            assert any(p.offset <= start and end <= p.end for p in doc.passages)
        for start, end in mentions:
            assert any(a <= start and end <= b for a, b in spans)
    doc = read_pubtator(NCBI_FIXTURE)[0]
    spans = document_sentences(doc.text, [], [(p.offset, p.end) for p in doc.passages])
    texts = [doc.text[a:b] for a, b in spans]
    assert texts[0] == doc.passages[0].text and texts[1] == "Familial breast cancer is common."
    assert len(texts) == 3 and texts[2].startswith("Dr. Smith")  # "Dr." is not a sentence end


def test_mention_across_passages_does_not_merge_them() -> None:
    text = "Breast cancer. Ovarian cancer is rare."
    spans = document_sentences(text, [(7, 22)], [(0, 14), (15, len(text))])
    assert spans == [(0, 14), (15, len(text))]
