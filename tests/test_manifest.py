"""Run manifests: the provenance every `bel eval` / `bel bench` JSON result carries (no network, no model)."""

from __future__ import annotations

import json
import re
import socket

import bel
from bel.commands import write_json_result
from bel.manifest import git_state, main, run_manifest

from .conftest import REPO

VERSION_KEYS = {"python", "bel", "torch", "transformers", "tokenizers", "accelerate", "numpy", "scipy"}


def test_manifest_keys():
    manifest = run_manifest(["bel", "eval", "--dataset", "ncbi-disease", "--output", "a b.json"])
    assert set(manifest) == {"command", "git_sha", "git_dirty", "versions", "machine", "time_utc"}
    assert manifest["command"] == "bel eval --dataset ncbi-disease --output 'a b.json'"
    assert set(manifest["versions"]) == VERSION_KEYS
    assert manifest["versions"]["bel"] == bel.__version__
    assert manifest["versions"]["torch"] and manifest["versions"]["numpy"]
    assert {"platform", "processor", "cpu_count", "torch_threads"} <= set(manifest["machine"])
    assert manifest["machine"]["cpu_count"] >= 1 and manifest["machine"]["torch_threads"] >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["time_utc"])
    assert manifest["git_sha"] is None or re.fullmatch(r"[0-9a-f]{40}", manifest["git_sha"])
    assert (manifest["git_sha"] is None) == (manifest["git_dirty"] is None)
    assert socket.gethostname() not in json.dumps(manifest["machine"])


def test_git_state_fails_soft(tmp_path):
    assert git_state(tmp_path) == (None, None)  # not a checkout (or the package is not tracked there)


def test_write_json_result_carries_the_manifest(tmp_path, capsys):
    output = tmp_path / "sub" / "eval.json"
    write_json_result({"acc@1": 0.5}, str(output))
    written = json.loads(output.read_text(encoding="utf-8"))
    assert written["acc@1"] == 0.5 and set(written["manifest"]["versions"]) == VERSION_KEYS
    write_json_result({"acc@1": 0.5}, None)
    assert "manifest" in json.loads(capsys.readouterr().out)
    kept = {"acc@1": 0.5, "manifest": {"command": "kept"}}
    write_json_result(kept, str(output))
    assert json.loads(output.read_text(encoding="utf-8"))["manifest"] == {"command": "kept"}


def test_manifest_command_line(tmp_path):
    output = tmp_path / "manifest.json"
    assert main([str(output), "--", "bash", "eval/recipes/speed_bench.sh", "bench-x"]) == 0
    manifest = json.loads(output.read_text(encoding="utf-8"))
    assert manifest["command"] == "bash eval/recipes/speed_bench.sh bench-x"
    assert (REPO / "src" / "bel" / "manifest.py").is_file()
