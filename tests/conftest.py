from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import settings

# Inputs per property test: 300 in CI; EDGEAGENT_FUZZ=1 runs 5,000 (docs/security.md).
settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("fuzz", max_examples=5000, deadline=None)
settings.load_profile("fuzz" if os.environ.get("EDGEAGENT_FUZZ") else "ci")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own EDGEAGENT_HOME, so notes, timers and files never leak."""
    monkeypatch.setenv("EDGEAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EDGEAGENT_FILES", raising=False)


@pytest.fixture(scope="session")
def llama_backend():
    """The embedded default model in llama.cpp, loaded once for all tests that run it."""
    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.models import default_model_path

    return LlamaCppBackend(default_model_path(), n_ctx=2048)


@pytest.fixture(scope="session")
def onnx_backend(tmp_path_factory):
    """The embedded default model exported to ONNX INT4 (edgeagent export onnx), in
    onnxruntime; needs the train and onnx extras."""
    pytest.importorskip("optimum.exporters.onnx")
    pytest.importorskip("llguidance")
    from edgeagent.backends.onnx import OnnxBackend
    from edgeagent.converters.onnx_export import export_onnx
    from edgeagent.models import default_model_path

    out = tmp_path_factory.mktemp("embedded") / "int4"
    export_onnx(default_model_path(), out, quant="int4", check=False)
    return OnnxBackend(out, n_ctx=2048)


@pytest.fixture(scope="session", params=["llama", "onnx"])
def backend(request):
    """The same agent tests run on both backends."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture(scope="session")
def hf_tokenizer():
    """The embedded model's tokenizer as a transformers tokenizer, read from its GGUF (needs the
    train extra): for tiny models built from a config."""
    pytest.importorskip("transformers")
    from edgeagent.basemodel import load_gguf_tokenizer
    from edgeagent.models import default_model_path

    return load_gguf_tokenizer(default_model_path())


@pytest.fixture(scope="session")
def bfcl_wheel(tmp_path_factory):
    """The bfcl-eval wheel, fetched once from the package index (edgeagent.bfcl)."""
    from edgeagent.bfcl import wheel_path

    return wheel_path(tmp_path_factory.mktemp("bfcl"))


@pytest.fixture
def bfcl_cache(bfcl_wheel):
    """The wheel in this test's EDGEAGENT_HOME cache, where edgeagent looks for it."""
    from edgeagent.paths import home

    folder = home() / "cache" / "bfcl"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(bfcl_wheel, folder / bfcl_wheel.name)
    return folder


def tiny_model(tokenizer, arch: str = "llama", hidden: int = 64, seed: int = 0):
    """A two-layer model of the embedded model's family (random weights, peaked logits)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    kw = dict(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, tie_word_embeddings=True, initializer_range=0.2,
    )  # fmt: skip
    if arch == "qwen2":
        return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**kw))
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**kw))


# The train and onnx extras' modules: tests that need them importorskip them, which is right on
# a developer's machine without the extras, but under CI (`CI` set, as .ci/run runs) a missing
# extra would make about 50 tests skip and `make test` stay green. There it fails the run.
EXTRAS = ("torch", "transformers", "peft", "optimum.exporters.onnx", "onnxruntime", "llguidance")


def pytest_sessionstart(session):
    import importlib.util

    if not os.environ.get("CI"):
        return
    missing = [m for m in EXTRAS if importlib.util.find_spec(m.split(".")[0]) is None]
    if missing:
        raise pytest.UsageError(
            f"CI is set but the extras are not installed: {', '.join(missing)} "
            "(make test installs them: pip install -e '.[train,onnx]')"
        )


def _fail_import_skip_under_ci(report, reason: str) -> None:
    if os.environ.get("CI") and report.skipped and "could not import" in reason:
        report.outcome = "failed"
        report.longrepr = f"CI: {reason} (an extra failed to install)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI, a test skipped because a module could not be imported fails instead."""
    report = (yield).get_result()
    if call.excinfo is not None:
        _fail_import_skip_under_ci(report, str(call.excinfo.value))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a test module that importorskips at its top."""
    report = (yield).get_result()
    if report.skipped:
        _fail_import_skip_under_ci(report, str(report.longrepr))
