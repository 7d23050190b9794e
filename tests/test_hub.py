"""`bel push` to a local fake Hub, then `pipeline("entity-linking", model=repo_id)` in a fresh process without bel.

The fake (tests/fake_hub.py) runs the real huggingface_hub create_repo/create_commit/download code paths; it cannot
prove authentication, large-file (LFS/xet) storage or the Hub's own model-card validation.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from .fake_hub import FakeHub
from .helpers import CHECKPOINT_FILES, SCHEMA, TEXT, make_linker, tiny_detector, wordpiece_tokenizer
from .remote import run_without_bel

EXPECTED_FILES = CHECKPOINT_FILES | {
    "README.md",
    "retrieval_bel.py",
    "abbreviations_bel.py",
    "consistency_bel.py",
    "dense_bel.py",
    "pipeline_bel.py",
    "inputs_bel.py",
    "matching_bel.py",
    "sentences_bel.py",
    "detection_bel.py",
    "backends_bel.py",
    "propagation_bel.py",
    "retriever/retriever_config.json",
    "retriever/retriever_names.json",
    "retriever/retriever_vocab.json",
    "retriever/retriever_index.npz",
}

LOAD_BACK = """
import json
from transformers import pipeline
linker = pipeline("entity-linking", model="user/bel-tiny", trust_remote_code=True)
print(json.dumps({{"raw": linker({text!r}), "module": type(linker).__module__}}))
"""


def hub_env(hub, hf_home) -> dict[str, str]:
    """Environment variables that point huggingface_hub at the fake Hub, online, with its own cache."""
    return {
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": "hf_fake",
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "HF_HOME": str(hf_home),
    }


def push(directory, repo_id: str, env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    """`bel push DIRECTORY REPO_ID` in a subprocess (this environment without PYTHONPATH, plus `env`)."""
    return subprocess.run(
        [sys.executable, "-m", "bel", "push", str(directory), repo_id, *options],
        env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def hub():
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.mark.slow  # `bel push` and the load back: two fresh interpreters
def test_push_and_load_back_by_repo_id(hub, bert_tokenizer, tmp_path, hf_home):
    from bel import load_linker

    directory = make_linker(bert_tokenizer, tmp_path / "checkpoint")
    (directory / "stray.bin").write_bytes(b"pickle")  # never uploaded
    pushed = push(directory, "user/bel-tiny", hub_env(hub, hf_home), "--commit-message", "first linker")
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    assert pushed.stdout.strip().startswith(f"{hub.url}/user/bel-tiny/commit/")

    assert [c["message"] for c in hub.commits] == ["first linker"]
    assert set(hub.commits[0]["files"]) == EXPECTED_FILES
    readme = hub.repos["user/bel-tiny"]["README.md"].decode()
    front = yaml.safe_load(readme.split("---\n")[1])
    assert front["library_name"] == "transformers" and front["pipeline_tag"] == "other"
    assert {"custom_code", "biomedical", "entity-linking"} <= set(front["tags"])
    assert front["model-index"][0]["results"][0]["dataset"]["type"] == "ncbi-disease"
    assert 'model="user/bel-tiny"' in readme and "path/to/checkpoint" not in readme

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_without_bel(LOAD_BACK.format(text=TEXT), cwd=elsewhere, env=hub_env(hub, hf_home / "reader"))
    assert result["module"].startswith("transformers_modules")
    assert result["raw"] == load_linker(directory)(TEXT)
    assert result["raw"] and all(set(m) == SCHEMA for m in result["raw"])


def test_detector_with_a_dictionary_loads_back_by_repo_id(hub, bert_tokenizer, tmp_path, hf_home):
    """The optional `detector/dictionary.json` is uploaded and fetched with the detector from the Hub."""
    from bel import load_linker
    from bel.saving import save_detector

    directory = make_linker(bert_tokenizer, tmp_path / "checkpoint")
    save_detector(directory, tiny_detector(wordpiece_tokenizer()))
    env = hub_env(hub, hf_home / "detector-reader")
    pushed = push(directory, "user/bel-detector", env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    assert "detector/dictionary.json" in hub.repos["user/bel-detector"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_without_bel(
        LOAD_BACK.format(text=TEXT).replace("user/bel-tiny", "user/bel-detector"), cwd=elsewhere, env=env
    )
    expected = load_linker(directory)(TEXT)
    assert result["raw"] == expected and {m["type"] for m in expected} == {"Disease"}


def test_push_refuses_a_directory_that_is_not_a_linker(tmp_path):
    from bel.saving import push_to_hub

    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not a saved linker"):
        push_to_hub(tmp_path, "user/x")
