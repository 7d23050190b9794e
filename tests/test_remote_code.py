"""A saved checkpoint loads with trust_remote_code in a fresh process where `bel` cannot be imported."""

from __future__ import annotations

import json

import pytest

from bel import PACKING_MODES

from .helpers import CHECKPOINT_FILES, tiny_model
from .remote import run_without_bel
from .test_modeling import scores_by_pair
from .test_packing import sample_document

pytestmark = pytest.mark.slow  # fresh interpreters

LOAD_AND_SCORE = """
import json, torch
from transformers import AutoConfig, AutoModel, AutoTokenizer
d = {directory!r}
config = AutoConfig.from_pretrained(d, trust_remote_code=True)
model = AutoModel.from_pretrained(d, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(d, trust_remote_code=True)
doc = json.loads({document!r})
LinkingInput = type(tokenizer).pack.__globals__["LinkingInput"]
documents = [LinkingInput(doc["text"], [tuple(s) for s in doc["mentions"]], doc["candidates"])]
scores = {{}}
for mode in {modes!r}:
    sequences = tokenizer.pack(documents, mode=mode)
    batch = tokenizer.pad_packed(sequences)
    with torch.no_grad():
        logits = model(**batch).logits
    for row, seq in enumerate(sequences):
        for k, (m, c) in enumerate(zip(seq["slot_mention"], seq["slot_candidate"])):
            scores[f"{{mode}}/{{m}}/{{c}}"] = logits[row, k].item()
print(json.dumps({{"config": type(config).__name__, "model": type(model).__name__,
                  "tokenizer": type(tokenizer).__name__, "module": type(model).__module__,
                  "mode": config.mode, "scores": scores}}))
"""


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_checkpoint_loads_where_bel_is_not_installed(kind, bert_tokenizer, roberta_tokenizer, tmp_path, hf_home):
    tokenizer = bert_tokenizer if kind == "bert" else roberta_tokenizer
    model = tiny_model(tokenizer, kind=kind, mode="sentence", seed=3)
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    files = {p.name for p in checkpoint.iterdir()}
    assert files >= CHECKPOINT_FILES
    assert json.loads((checkpoint / "config.json").read_text())["auto_map"]["AutoModel"].endswith(
        "BelForMultiCandidateLinking"
    )

    doc = sample_document(num_candidates=4)
    document = json.dumps({"text": doc.text, "mentions": doc.mentions, "candidates": doc.candidates})
    modes = list(PACKING_MODES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = LOAD_AND_SCORE.format(directory=str(checkpoint), document=document, modes=modes)
    result = run_without_bel(code, cwd=elsewhere, env={"HF_HOME": str(hf_home)})

    assert (result["config"], result["model"], result["tokenizer"]) == (
        "BelConfig",
        "BelForMultiCandidateLinking",
        "BelTokenizer",
    )
    assert result["module"].startswith("transformers_modules")
    assert result["mode"] == "sentence"
    for mode in modes:
        local = scores_by_pair(model, tokenizer, [doc], mode)
        remote = {
            tuple(int(x) for x in key.split("/")[1:]): v
            for key, v in result["scores"].items()
            if key.startswith(mode + "/")
        }
        assert remote.keys() == {(m, c) for _, m, c in local}
        assert max(abs(remote[(m, c)] - v) for (_, m, c), v in local.items()) < 1e-5
