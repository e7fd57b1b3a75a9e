"""The converter chain on tiny models (the embedded model's tokenizer, random weights): merge,
HF -> GGUF for llama and qwen2, libllama's quantizer, the self-check, and their refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from edgeagent.converters.hf_gguf import UnsupportedModelError, hf_to_gguf  # noqa: E402
from edgeagent.converters.lora_gguf import AdapterMismatchError  # noqa: E402
from edgeagent.converters.merge import load_merged  # noqa: E402
from edgeagent.converters.pipeline import export_gguf  # noqa: E402
from edgeagent.converters.quantize import quantize_gguf  # noqa: E402
from edgeagent.converters.selfcheck import THRESHOLDS, SelfCheckError  # noqa: E402
from edgeagent.models import default_model_path, inspect_gguf, read_gguf_header  # noqa: E402
from tests.conftest import tiny_model  # noqa: E402
from tests.test_cli import cli  # noqa: E402

CHAT = "<|im_start|>user\nStart a 12 minute timer for the pasta<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def tokenizer(hf_tokenizer):
    return hf_tokenizer


def tiny(tokenizer, arch: str, hidden: int = 64):
    return tiny_model(tokenizer, arch, hidden)


@pytest.fixture(scope="module")
def hf_dirs(tokenizer, tmp_path_factory):
    out = {}
    for arch in ("llama", "qwen2"):
        folder = tmp_path_factory.mktemp(arch)
        tiny(tokenizer, arch).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        out[arch] = folder
    return out


def llama_ids(path, text=CHAT):
    from llama_cpp import Llama

    vocab = Llama(str(path), vocab_only=True, verbose=False)
    return vocab.tokenize(text.encode(), add_bos=False, special=True)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_f16_export_agrees_with_the_reference_and_keeps_the_tokenizer(hf_dirs, tmp_path, arch):
    out = tmp_path / "m.gguf"
    result = export_gguf(hf_dirs[arch], out, quant="f16")
    assert result.check is not None and result.check.passed
    assert result.check.top1_agreement >= 0.99
    assert abs(result.check.perplexity / result.check.reference_perplexity - 1) < 0.01
    info = inspect_gguf(out)
    assert info.architecture == arch and info.n_layers == 2
    original = default_model_path()
    # the same token ids as the embedded model's own GGUF, special tokens included
    assert llama_ids(out) == llama_ids(original)
    assert info.chat_template == inspect_gguf(original).chat_template
    fields = read_gguf_header(out).fields
    assert fields["tokenizer.ggml.pre"] == "smollm"
    assert fields["tokenizer.ggml.eos_token_id"] == 2
    assert not list(tmp_path.glob(".*"))  # no work folder or temporary file left


def test_libllama_quantizes_to_each_format_and_llama_cpp_runs_them(hf_dirs, tmp_path):
    from llama_cpp import Llama

    f16 = hf_to_gguf(hf_dirs["llama"], tmp_path / "f16.gguf", "f16").path
    sizes = {}
    for quant in ("q8_0", "q4_k_m", "q4_0", "q5_k_m", "iq4_nl"):
        result = quantize_gguf(f16, tmp_path / f"{quant}.gguf", quant)
        sizes[quant] = result.bytes
        llm = Llama(result.path, n_ctx=64, logits_all=True, verbose=False)
        llm.eval(llama_ids(result.path)[:8])
        assert np.isfinite(np.array(llm.scores[:8])).all()
        llm.close()
    assert sizes["q4_0"] < sizes["q8_0"]


def test_a_merged_adapter_computes_what_peft_computes_and_exports(
    hf_dirs, tokenizer, tmp_path, monkeypatch
):
    base = tiny(tokenizer, "llama")
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                             init_lora_weights=False)  # fmt: skip
    adapted = peft.get_peft_model(base, config)
    adapter = tmp_path / "adapter"
    adapted.save_pretrained(adapter)
    ids = torch.tensor([tokenizer(CHAT)["input_ids"]])
    with torch.no_grad():
        want = adapted(ids).logits
        merged, _ = load_merged(hf_dirs["llama"], adapter)
        got = merged(ids).logits
        bare = tiny(tokenizer, "llama")(ids).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, bare, atol=1e-2)  # the adapter changed something
    result = json.loads(cli("export", "merge", str(adapter), "--base", str(hf_dirs["llama"]),
                            "--out", str(tmp_path / "merged"), "--json").stdout)  # fmt: skip
    saved = json.loads((tmp_path / "merged" / "edgeagent.json").read_text())
    assert saved["adapter"] == str(adapter) and result["dtype"] == "float16"
    assert (tmp_path / "merged" / "tokenizer_config.json").exists()
    with torch.no_grad():  # what the command wrote computes what peft computes
        written = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged").float()
        assert torch.allclose(written(ids).logits, want, atol=2e-2)
    # a random model with a random adapter has flat logits that F16 rounding reorders now and
    # then (98% here); the real model's figures are in docs/benchmarks.md
    monkeypatch.setitem(THRESHOLDS, "f16", 0.95)
    check = export_gguf(hf_dirs["llama"], tmp_path / "ft.gguf", adapter, "f16").check
    assert check is not None and check.top1_agreement >= 0.95


def test_an_adapter_for_another_model_is_refused_with_the_mismatch(hf_dirs, tokenizer, tmp_path):
    other = peft.get_peft_model(tiny(tokenizer, "llama", hidden=32),
                                peft.LoraConfig(r=2, target_modules=["q_proj"]))  # fmt: skip
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(AdapterMismatchError, match="does not fit"):
        load_merged(hf_dirs["llama"], tmp_path / "other")


def test_unsupported_architecture_is_refused_with_the_supported_list(hf_dirs, tmp_path):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    config = json.loads((hf_dirs["llama"] / "config.json").read_text())
    (folder / "config.json").write_text(
        json.dumps({**config, "architectures": ["GPT2LMHeadModel"]})
    )
    with pytest.raises(UnsupportedModelError) as err:
        hf_to_gguf(folder, tmp_path / "x.gguf")
    assert "GPT2LMHeadModel" in str(err.value) and "LlamaForCausalLM" in err.value.hint
    assert not (tmp_path / "x.gguf").exists()


def test_a_failed_self_check_leaves_no_output(hf_dirs, tmp_path, monkeypatch):
    monkeypatch.setitem(THRESHOLDS, "f16", 1.01)  # no export can reach it
    out = tmp_path / "m.gguf"
    with pytest.raises(SelfCheckError, match="below"):
        export_gguf(hf_dirs["qwen2"], out, quant="f16")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_gguf_json_and_the_result_runs(hf_dirs, tmp_path):
    out = tmp_path / "m.gguf"
    cmd = [sys.executable, "-m", "edgeagent", "export", "gguf", "--base", str(hf_dirs["llama"]),
           "--quant", "q8_0", "--no-check", "--out", str(out), "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["quant"] == "q8_0" and report["bytes"] == out.stat().st_size
    run = [sys.executable, "-m", "edgeagent", "run", "--model", str(out), "--max-steps", "1",
           "--tool-choice", "required", "Start a 12 minute timer", "--json"]  # fmt: skip
    done = subprocess.run(run, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tool_calls"], done.stdout  # the grammar made it call a tool
