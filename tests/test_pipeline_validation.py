"""Issue 15, point 3: every pipeline input and parameter is checked before any model work, with a `ValueError` naming
the input index and the field; `errors="collect"` gives per-item errors instead of losing the batch."""

from __future__ import annotations

import math
import re

import pytest

from bel import EntityLinkingPipeline

from .helpers import TEXT

END = len(TEXT)  # two sentences: [0, 51) and [52, END)
GOOD = {"text": TEXT, "mentions": [{"start": 0, "end": 9}]}
SECOND = {"text": TEXT, "mentions": [{"start": 66, "end": 79}]}


@pytest.fixture
def no_model_work(linker, monkeypatch):
    """Any retrieval or reranking fails the test: validation must refuse before it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("model work started before the input was validated")

    monkeypatch.setattr(linker, "_forward", forbidden)
    return linker


@pytest.fixture
def forward_calls(linker, monkeypatch):
    """Count the documents each `_forward` call (one model pass over a batch of documents) receives."""
    calls = []
    original = linker._forward

    def counted(model_inputs, **kwargs):
        texts = model_inputs["text"]
        calls.append(1 if isinstance(texts, str) else len(texts))
        return original(model_inputs, **kwargs)

    monkeypatch.setattr(linker, "_forward", counted)
    return calls


# every case: (bad input, the field its message must name, a fragment of the reason)
BAD_INPUTS = {
    "passage outside the text": ({"text": TEXT, "passages": [[0, 51], [52, END + 5]]}, "passage 1", "outside the text"),
    "passage negative": ({"text": TEXT, "passages": [[-1, 51]]}, "passage 0", "outside the text"),
    "passage reversed": ({"text": TEXT, "passages": [[51, 0]]}, "passage 0", "reversed"),
    "passage float": ({"text": TEXT, "passages": [[0.0, 51]]}, "passage 0", "integers"),
    "passage bool": ({"text": TEXT, "passages": [[False, 51]]}, "passage 0", "integers"),
    "passage not a pair": ({"text": TEXT, "passages": [[0, 20, 51]]}, "passage 0", "[start, end]"),
    "passages overlapping": ({"text": TEXT, "passages": [[0, 60], [52, END]]}, "passage 1", "must not overlap"),
    "passages out of order": ({"text": TEXT, "passages": [[52, END], [0, 51]]}, "passage 1", "in order"),
    "passages not a list": ({"text": TEXT, "passages": "0-51"}, "'passages'", "non-empty list"),
    "passages empty": ({"text": TEXT, "passages": []}, "'passages'", "non-empty list"),
    "mention outside every passage": (
        {"text": TEXT, "passages": [[0, 51]], "mentions": [{"start": 66, "end": 79}]},
        "mention 0",
        "not inside one passage",
    ),
    "mention spanning two passages": (
        {"text": TEXT, "passages": [[0, 51], [52, END]], "mentions": [{"start": 46, "end": 60}]},
        "mention 0",
        "cross a passage boundary",
    ),
    "mention outside the text": ({"text": TEXT, "mentions": [{"start": 5, "end": 500}]}, "mention 0", "outside"),
    "mention reversed": ({"text": TEXT, "mentions": [{"start": 9, "end": 3}]}, "mention 0", "reversed"),
    "mention zero-length": ({"text": TEXT, "mentions": [{"start": 4, "end": 4}]}, "mention 0", "zero-length"),
    "mention bool offset": ({"text": TEXT, "mentions": [{"start": True, "end": 9}]}, "mention 0", "integers"),
    "mention float offset": ({"text": TEXT, "mentions": [{"start": 1.7, "end": 9}]}, "mention 0", "integers"),
    "mention integral float": ({"text": TEXT, "mentions": [{"start": 0, "end": 9.0}]}, "mention 0", "integers"),
    "mention without end": ({"text": TEXT, "mentions": [{"start": 0}]}, "mention 0", "expected"),
    "mention not a span": ({"text": TEXT, "mentions": ["fever"]}, "mention 0", "expected"),
    "mention type not a string": (
        {"text": TEXT, "mentions": [{"start": 0, "end": 9}, {"start": 37, "end": 42, "type": 7}]},
        "mention 1",
        "'type' must be a string",
    ),
    "mentions not a list": ({"text": TEXT, "mentions": {"start": 0, "end": 9}}, "'mentions'", "must be a list"),
    "mentions a string": ({"text": TEXT, "mentions": "0-9"}, "'mentions'", "must be a list"),
    "dict without text": ({"mentions": [{"start": 0, "end": 9}]}, "'text'", "needs a string"),
    "text not a string": ({"text": 42}, "'text'", "needs a string"),
    "not a string or dict": (42, "expected a string or a dict", "got int"),
    "None": (None, "expected a string or a dict", "got NoneType"),
    "lone surrogate in raw text": ("Fever \ud800 and rash.", "'text'", "lone surrogate U+D800 at character 6"),
    "lone surrogate in dict text": (
        {"text": "Fever and rash.\udcff", "mentions": [{"start": 0, "end": 5}]},
        "'text'",
        "lone surrogate U+DCFF at character 15",
    ),
}


def _names(message: str, index: int, field: str, reason: str) -> bool:
    return message.startswith(f"input {index}") and field in message and reason in message


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_in_a_list_is_refused_before_model_work(no_model_work, case):
    bad, field, reason = BAD_INPUTS[case]
    with pytest.raises(ValueError) as caught:
        no_model_work([GOOD, bad, SECOND])
    assert _names(str(caught.value), 1, field, reason), str(caught.value)


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_single_input_is_refused_and_named_input_0(no_model_work, case):
    bad, field, reason = BAD_INPUTS[case]
    with pytest.raises(ValueError) as caught:
        no_model_work(bad)
    assert _names(str(caught.value), 0, field, reason), str(caught.value)


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_collect_replaces_each_bad_input_by_its_error(linker, forward_calls, case):
    bad, field, reason = BAD_INPUTS[case]
    expected = [linker(GOOD), linker(SECOND)]
    forward_calls.clear()
    out = linker([GOOD, bad, SECOND], errors="collect", batch_size=8)
    assert len(out) == 3 and out[0] == expected[0] and out[2] == expected[1]
    assert set(out[1]) == {"error"} and _names(out[1]["error"], 1, field, reason), out[1]
    assert forward_calls == [2]  # the two valid documents, in one pass
    with pytest.raises(ValueError) as caught:  # "collect" gives exactly the message "raise" raises
        linker([GOOD, bad, SECOND], errors="raise")
    assert str(caught.value) == out[1]["error"]


def test_collect_on_a_single_input_returns_the_error_dict(no_model_work):
    out = no_model_work({"text": TEXT, "mentions": [{"start": 0, "end": 9.0}]}, errors="collect")
    assert list(out) == ["error"] and out["error"].startswith("input 0, mention 0: start/end must be integers")


def test_collect_keeps_index_order_and_links_nothing_when_all_are_bad(no_model_work):
    out = no_model_work([42, {"text": None}, "ok \ud801"], errors="collect")
    assert [item["error"].split(":")[0] for item in out] == ["input 0", "input 1", "input 2, 'text'"]


def test_collect_with_many_bad_items_links_the_valid_ones_like_alone(linker, forward_calls):
    items = [GOOD, 1, SECOND, {"text": TEXT, "passages": [[5, 2]]}, TEXT, {"text": "   "}]
    alone = [linker(GOOD), linker(SECOND), linker(TEXT)]
    forward_calls.clear()
    out = linker(items, errors="collect", batch_size=3)
    assert [out[0], out[2], out[4], out[5]] == [*alone, []]
    assert out[1]["error"].startswith("input 1:") and out[3]["error"].startswith("input 3, passage 0 (5, 2)")
    assert forward_calls == [3, 1]  # the 4 valid documents in batches of 3: nothing linked twice


def test_errors_given_at_construction_apply_to_every_call(linker):
    collecting = EntityLinkingPipeline(
        model=linker.model, tokenizer=linker.tokenizer, retriever=linker.retriever, errors="collect"
    )
    assert collecting([GOOD, 5])[1]["error"].startswith("input 1:")
    with pytest.raises(ValueError, match="input 1:"):
        collecting([GOOD, 5], errors="raise")


def test_collect_does_not_hide_other_failures(linker, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("reranker failed")

    monkeypatch.setattr(linker.model, "score", broken)
    with pytest.raises(RuntimeError, match="reranker failed"):
        linker([GOOD, 5], errors="collect", cascade=False)


def test_valid_edge_inputs_are_accepted(linker):
    """What validation must NOT refuse: spans as pairs, a string type, a surrogate pair written as one character,
    mentions exactly filling a passage, an empty passage, a threshold above 1 (every mention NIL)."""
    text = "Fever \U0001f9ec and rash."
    out = linker({"text": text, "passages": [[0, 5], [5, 5], [5, len(text)]], "mentions": [[0, 5], (12, 16)]})
    assert [m["text"] for m in out] == ["Fever", "rash"]
    out = linker({"text": TEXT, "mentions": [{"start": 0, "end": 9, "type": "Disease"}]}, nil_threshold=1.5)
    assert out[0]["type"] == "Disease" and out[0]["nil_reason"] == "below_threshold"


# ------------------------------------------------------------------------------------------------ parameters
BAD_PARAMETERS = [
    ("num_candidates", 0, "num_candidates must be an integer >= 1"),
    ("num_candidates", -3, "num_candidates must be an integer >= 1"),
    ("num_candidates", 2.0, "num_candidates must be an integer >= 1"),
    ("num_candidates", True, "num_candidates must be an integer >= 1"),
    ("top_k", -1, "top_k must be an integer >= 0"),
    ("top_k", 1.5, "top_k must be an integer >= 0"),
    ("top_k", True, "top_k must be an integer >= 0"),
    ("nil_threshold", math.nan, "nil_threshold must be a finite number >= 0"),
    ("nil_threshold", math.inf, "nil_threshold must be a finite number >= 0"),
    ("nil_threshold", -0.1, "nil_threshold must be a finite number >= 0"),
    ("nil_threshold", "0.5", "nil_threshold must be a finite number >= 0"),
    ("nil_threshold", True, "nil_threshold must be a finite number >= 0"),
    ("batch_size", 0, "batch_size must be an integer >= 1"),
    ("batch_size", -2, "batch_size must be an integer >= 1"),
    ("batch_size", 1.5, "batch_size must be an integer >= 1"),
    ("detector", "spacy", "detector must be one of auto, model, dictionary"),
    ("mode", "paragraph", "mode must be one of"),
    ("errors", "ignore", "errors must be one of 'raise', 'collect'"),
    ("errors", "skip", "errors must be one of 'raise', 'collect'"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_PARAMETERS)
def test_bad_parameter_at_call_is_refused_before_model_work(no_model_work, name, value, message):
    for errors in ("raise", "collect"):  # a bad parameter is never collected
        parameters = {name: value} if name == "errors" else {name: value, "errors": errors}
        with pytest.raises(ValueError, match=re.escape(message)):
            no_model_work([GOOD, 5], **parameters)


@pytest.mark.parametrize(("name", "value", "message"), BAD_PARAMETERS)
def test_bad_parameter_at_construction_is_refused(linker, name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        EntityLinkingPipeline(model=linker.model, tokenizer=linker.tokenizer, **{name: value})


def test_unknown_parameter_lists_the_known_ones(no_model_work):
    with pytest.raises(ValueError, match=r"unknown parameters \['topk'\].*batch_size, errors, deterministic, cascade"):
        no_model_work(TEXT, topk=3)


def test_detector_option_at_construction(linker):
    dictionary = EntityLinkingPipeline(
        model=linker.model, tokenizer=linker.tokenizer, retriever=linker.retriever, detector="dictionary"
    )
    assert dictionary._forward_params["detector"] == "dictionary" and dictionary(TEXT) == linker(TEXT)


def test_batch_size_none_means_the_default(linker):
    assert linker([GOOD], batch_size=None) == [linker(GOOD)]


@pytest.mark.parametrize("value", [1, "yes", None.__class__])
def test_deterministic_must_be_a_bool(no_model_work, value):
    with pytest.raises(ValueError, match="deterministic must be True or False"):
        no_model_work(TEXT, deterministic=value)
