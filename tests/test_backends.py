"""Inference backends: int8 (torch dynamic quantisation) and ONNX Runtime give fp32's top-1 on a tiny model, a linker
loaded with each backend links with the usual schema, a missing onnxruntime is one clear line, and `bel link` keeps
the backend in its resume identity.

The ONNX tests need the optional extra (`pip install 'bel-linking[onnx]'`) and are skipped cleanly without it; one
export of the tiny model takes ~7 s, so each module exports at most twice (the reranker; the detector's encoder).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys

import pytest
import torch

from .helpers import SCHEMA, TEXT, make_linker, tiny_model, wordpiece_tokenizer

# int8 quantises the activations on the fly: on random tiny weights the logits move by ~1e-2; ONNX Runtime by ~1e-6
INT8_TOLERANCE, ONNX_TOLERANCE = 0.1, 1e-4


@pytest.fixture(scope="module")
def tokenizer():
    from bel import BelTokenizer

    return BelTokenizer.from_encoder(wordpiece_tokenizer())


@pytest.fixture(scope="module")
def fp32_model(tokenizer):
    return tiny_model(tokenizer, seed=3)


@pytest.fixture(scope="module")
def documents(tokenizer):
    """Fixed linking inputs: three documents with several mentions and four candidates each."""
    from bel.inputs_bel import build_linking_input, retrieve

    from .helpers import tiny_retriever

    texts = [TEXT, "Heart failure and renal failure in children.", "Familial adenomatous polyposis and colon cancer."]
    spans = [[(0, 9), (15, 30), (36, 41), (66, 79)], [(0, 13), (18, 31)], [(0, 30), (35, 47)]]
    found = retrieve(tiny_retriever(), list(zip(texts, spans, strict=True)), 4)
    return [build_linking_input(t, s, c) for t, s, c in zip(texts, spans, found, strict=True)]


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory):
    """Exports go to a folder of this module, never to the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("onnx-cache")
        patch.setenv("BEL_ONNX_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def onnx_model(fp32_model):
    """`fp32_model` on ONNX Runtime, exported once into the module's cache (the saved linker's encoder is the same)."""
    for package in ("onnxruntime", "onnx", "onnxscript"):  # the optional extra: pip install 'bel-linking[onnx]'
        pytest.importorskip(package)
    from bel.onnx_backend import use_onnx

    return use_onnx(copy.deepcopy(fp32_model))


def top1(scores) -> list[int]:
    return [max(range(len(mention)), key=mention.__getitem__) for doc in scores for mention in doc]


def flat(scores) -> torch.Tensor:
    return torch.tensor([s for doc in scores for mention in doc for s in mention])


# ------------------------------------------------------------------------------------------------ same top-1 as fp32
def test_int8_gives_the_fp32_top1(fp32_model, tokenizer, documents):
    from bel.backends_bel import apply_backend

    reference = fp32_model.score(tokenizer, documents, mode="mention")
    model = copy.deepcopy(fp32_model)
    apply_backend(model.base_model, "int8")  # the encoder, as the pipeline and load_components do
    assert type(model.encoder.encoder.layer[0].attention.self.query).__module__.startswith("torch.ao.nn.quantized")
    scores = model.score(tokenizer, documents, mode="mention")
    assert top1(scores) == top1(reference)
    assert (flat(scores) - flat(reference)).abs().max() < INT8_TOLERANCE


def test_int8_is_per_channel_packed_for_its_engine_and_restores_the_global_one(fp32_model, tokenizer, documents):
    from bel import backends_bel
    from bel.backends_bel import quantize_int8

    before = torch.backends.quantized.engine
    reference = top1(fp32_model.score(tokenizer, documents, mode="mention"))
    for engine in dict.fromkeys([backends_bel.int8_engine(), before]):  # oneDNN where built in, and torch's default
        model = copy.deepcopy(fp32_model)
        quantize_int8(model.base_model, engine=engine)
        assert torch.backends.quantized.engine == before  # only the packing used `engine`
        weight = model.encoder.encoder.layer[0].output.dense.weight()
        assert weight.qscheme() == torch.per_channel_affine and len(weight.q_per_channel_scales()) == weight.shape[0]
        assert top1(model.score(tokenizer, documents, mode="mention")) == reference


def test_int8_engine_falls_back_when_onednn_is_not_built_in(monkeypatch):
    from bel import backends_bel

    assert backends_bel.int8_engine() in torch.backends.quantized.supported_engines
    monkeypatch.setattr(backends_bel, "INT8_ENGINE", "no-such-engine")
    assert backends_bel.int8_engine() == torch.backends.quantized.engine


def test_onnx_gives_the_fp32_top1(fp32_model, onnx_model, tokenizer, documents, onnx_cache):
    from bel.onnx_backend import INFO_FILE, OnnxEncoder, use_onnx

    reference = fp32_model.score(tokenizer, documents, mode="mention")
    model = onnx_model
    assert isinstance(model.encoder, OnnxEncoder)
    (export,) = onnx_cache.iterdir()
    info = json.loads((export / INFO_FILE).read_text())
    assert info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]  # BERT: two token types
    for mode in ("mention", "document"):  # other batch sizes and lengths than the export's: dynamic axes
        scores = model.score(tokenizer, documents, mode=mode)
        assert top1(scores) == top1(fp32_model.score(tokenizer, documents, mode=mode))
    assert (flat(model.score(tokenizer, documents, mode="mention")) - flat(reference)).abs().max() < ONNX_TOLERANCE
    again = use_onnx(copy.deepcopy(fp32_model), export)  # the export is reused, not redone
    assert json.loads((export / INFO_FILE).read_text()) == info and isinstance(again.encoder, OnnxEncoder)
    assert [p.name for p in onnx_cache.iterdir()] == [export.name]


def test_onnx_export_of_other_weights_is_redone(fp32_model, onnx_model, tokenizer, onnx_cache, tmp_path):
    import shutil

    from bel.onnx_backend import INFO_FILE, fingerprint, use_onnx

    (export,) = onnx_cache.iterdir()
    shutil.copytree(export, tmp_path / "export")
    stale = json.loads((tmp_path / "export" / INFO_FILE).read_text())["fingerprint"]
    other = tiny_model(tokenizer, seed=4)
    use_onnx(copy.deepcopy(other), tmp_path / "export")
    fresh = json.loads((tmp_path / "export" / INFO_FILE).read_text())["fingerprint"]
    assert stale == fingerprint(fp32_model.encoder) != fresh == fingerprint(other.encoder)


# ------------------------------------------------------------------------------------------------ linkers
@pytest.fixture(scope="module")
def linker_dir(tokenizer, tmp_path_factory):
    return make_linker(tokenizer, tmp_path_factory.mktemp("backends") / "linker", seed=3)  # fp32_model's encoder


@pytest.mark.parametrize("backend", ["torch", "int8", "onnx"])
def test_linker_loaded_with_each_backend_links(backend, linker_dir, request):
    from bel import load_linker

    if backend == "onnx":
        request.getfixturevalue("onnx_model")  # exported once: the linker finds its encoder in the cache
    linker = load_linker(linker_dir, backend=backend)
    assert linker.backend == backend
    if backend == "onnx":
        from bel.onnx_backend import runs_onnx

        assert runs_onnx(linker.model)
    mentions = linker({"text": TEXT, "mentions": [[0, 9], [36, 41], [66, 79]]}, cascade=False)
    assert [set(m) for m in mentions] == [SCHEMA] * 3
    assert all(m["decided_by"] == "reranker" and m["entity_id"] for m in mentions)
    reference = load_linker(linker_dir)({"text": TEXT, "mentions": [[0, 9], [36, 41], [66, 79]]}, cascade=False)
    assert [m["entity_id"] for m in mentions] == [m["entity_id"] for m in reference]


def test_load_components_applies_the_backend(linker_dir):
    from bel.saving import load_components

    model, _, _ = load_components(linker_dir, backend="int8")
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())
    assert type(model.scorer) is torch.nn.Linear  # the scorer stays in float
    with pytest.raises(ValueError, match="backend must be one of torch, int8"):
        load_components(linker_dir, backend="fp16")


# ------------------------------------------------------------------------------------------------ onnxruntime absent
@pytest.fixture
def no_onnxruntime(monkeypatch):
    """onnxruntime made unimportable (a None entry in sys.modules: find_spec and import both fail)."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert importlib.util.find_spec("onnxruntime") is None


def test_use_onnx_without_onnxruntime_names_the_extra(no_onnxruntime, fp32_model, tmp_path):
    from bel.onnx_backend import OnnxUnavailableError, onnx_available, use_onnx

    assert not onnx_available()
    with pytest.raises(
        OnnxUnavailableError, match=r"^backend 'onnx' needs onnxruntime: pip install 'bel-linking\[onnx\]'$"
    ):
        use_onnx(copy.deepcopy(fp32_model), tmp_path)
    assert not any(tmp_path.iterdir())  # refused before any export


def test_cli_backend_onnx_without_onnxruntime_is_one_line(no_onnxruntime, linker_dir, tmp_path, capsys):
    from bel.cli import main

    (tmp_path / "in.txt").write_text("Breast cancer.\n")
    for argv in (
        ["link", str(linker_dir), str(tmp_path / "in.txt"), "--output", str(tmp_path / "o.jsonl"), "--backend", "onnx"],
        ["eval", str(linker_dir), "--corpus-file", str(tmp_path / "in.txt"), "--backend", "onnx"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[0] == f"bel {argv[0]}: error: backend 'onnx' needs onnxruntime: pip install 'bel-linking[onnx]'"
    assert not (tmp_path / "o.jsonl").exists()


def test_pipeline_onnx_without_bel_onnx_backend_points_to_load_linker(monkeypatch):
    from bel import backends_bel

    monkeypatch.setattr(backends_bel, "_REGISTERED", {})
    with pytest.raises(ValueError, match=r"bel.load_linker\(checkpoint, backend='onnx'\)"):
        backends_bel.check_backend("onnx")


# ------------------------------------------------------------------------------------------------ bel link resume
class Crash(RuntimeError):
    pass


def crash_after_one_batch(monkeypatch):
    """`bel link` loads its linker through this: the real one, killed after its first batch."""
    import bel.saving

    load = bel.saving.load_linker

    class Crashing:
        def __init__(self, linker) -> None:
            self.linker, self.backend, self.calls = linker, linker.backend, 0

        def __getattr__(self, name):
            return getattr(self.linker, name)

        def __call__(self, *args, **kwargs):
            self.calls += 1
            if self.calls > 1:
                raise Crash
            return self.linker(*args, **kwargs)

    monkeypatch.setattr(bel.saving, "load_linker", lambda *a, **k: Crashing(load(*a, **k)))
    return load


def test_bel_link_int8_keeps_the_backend_in_its_resume_identity(linker_dir, tmp_path, capsys, monkeypatch):
    import bel.saving
    from bel.cli import main

    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("".join(f"PMID{k}\tBreast cancer and fever {k}.\n" for k in range(6)))
    argv = ["link", str(linker_dir), str(source), "--output", str(out), "--batch-size", "2", "--no-progress"]
    load = crash_after_one_batch(monkeypatch)
    with pytest.raises(Crash):
        main([*argv, "--backend", "int8", "--no-cascade"])
    (progress,) = tmp_path.glob("out.jsonl.*progress.json")
    options = json.loads(progress.read_text())["identity"]["options"]
    assert options["backend"] == "int8" and options["cascade"] is False
    monkeypatch.setattr(bel.saving, "load_linker", load)
    assert main([*argv, "--no-cascade"]) == 2  # --backend torch now: refused, naming the change
    assert "backend was 'int8', now 'torch'" in capsys.readouterr().err
    assert main([*argv, "--backend", "int8", "--no-cascade"]) == 0  # the same backend resumes
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"PMID{k}" for k in range(6)]


def test_onnx_linker_runs_its_detector_on_onnx_too(tokenizer, linker_dir, tmp_path, request):
    """The learned detector's encoder is exported too (one more export) and finds the same mentions as in torch."""
    import shutil

    from transformers import BertConfig, BertForTokenClassification

    from bel import load_linker
    from bel.detection_bel import MentionDetector, bio_labels
    from bel.onnx_backend import runs_onnx
    from bel.saving import save_detector

    from .helpers import TINY_SIZES

    request.getfixturevalue("onnx_model")  # the reranker's export, shared with the tests above
    labels = bio_labels(["Disease"])
    torch.manual_seed(5)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=3, id2label=dict(enumerate(labels)), **TINY_SIZES)
    model = BertForTokenClassification(config)
    with torch.no_grad():  # tags most words as disease starts: a non-trivial output to compare
        model.classifier.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    directory = shutil.copytree(linker_dir, tmp_path / "linker")
    save_detector(directory, MentionDetector(model, tokenizer, max_length=16, overlap=4))
    reference = load_linker(directory)(TEXT, detector="model", cascade=False)
    linker = load_linker(directory, backend="onnx")
    found = linker(TEXT, detector="model", cascade=False)
    assert runs_onnx(linker.detector.model) and linker.detector.model.bert.embeddings is None  # torch layers freed
    assert [(m["start"], m["end"], m["entity_id"]) for m in found] == [
        (m["start"], m["end"], m["entity_id"]) for m in reference
    ]
    assert found and all(SCHEMA <= set(m) <= SCHEMA | {"nil_reason"} for m in found)


# ------------------------------------------------------------------------------------------------ bel eval
def test_bel_eval_records_backend_and_cascade(linker_dir, tmp_path):
    from bel.cli import main

    from .helpers import FIXTURES

    common = ["--corpus-file", str(FIXTURES / "bel_train_dev.txt"), "--kb-file", str(FIXTURES / "bel_train_kb.txt")]
    out = tmp_path / "metrics.json"
    argv = ["eval", str(linker_dir), *common, "--max-documents", "3", "--end-to-end", "--output", str(out)]
    assert main([*argv, "--backend", "int8", "--no-cascade"]) == 0
    result = json.loads(out.read_text())
    assert result["backend"] == "int8" and result["cascade"]["enabled"] is False
    assert result["end_to_end"]["backend"] == "int8" and result["end_to_end"]["cascade"] is False
    with pytest.raises(SystemExit, match="--retriever-only"):
        main(["eval", "--retriever-only", *common, "--backend", "int8"])


def test_device_auto_is_the_cpu_here_and_cpu_backends_refuse_a_gpu():
    import argparse

    from bel.commands import options

    assert options.device_for(argparse.Namespace(device="auto", backend="int8")) in ("cpu", "cuda:0")
    assert options.device_for(argparse.Namespace(device="cpu", backend="onnx")) == "cpu"
    with pytest.raises(ValueError, match="--backend int8 runs on the CPU only"):
        options.device_for(argparse.Namespace(device="cuda", backend="int8"))
