"""PEFT LoRA -> GGUF LoRA: llama.cpp applies the exported adapter as peft does (real model)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from edgeagent.converters.lora_gguf import (  # noqa: E402
    AdapterMismatchError,
    export_lora_gguf,
    read_lora_gguf,
)
from edgeagent.errors import EdgeAgentError, ModelFileError  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402
from tests.test_cli import cli  # noqa: E402

PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "Set a timer for 12 minutes for the pasta, please.<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def random_adapter(tmp_path_factory):
    """A LoRA on q, k, v, o with B large enough that its effect stands well above the noise of
    Q4 arithmetic (llama.cpp) vs float arithmetic (transformers)."""
    from peft import LoraConfig, get_peft_model

    from edgeagent.basemodel import load_base

    model, tok = load_base(default_model_path())
    ids = tok(PROMPT, add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, init_lora_weights=False,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])  # fmt: skip
    peft = get_peft_model(model, config)
    for name, p in peft.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.05)
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    peft.save_pretrained(folder)
    with torch.no_grad():
        tuned = peft(torch.tensor([ids])).logits[0].numpy()
        with peft.disable_adapter():
            base = peft(torch.tensor([ids])).logits[0].numpy()
    return folder, ids, base, tuned


def _llama_logits(ids, lora=None):
    import llama_cpp

    llm = llama_cpp.Llama(str(default_model_path()), n_ctx=512, logits_all=True, lora_path=lora,
                          verbose=False)  # fmt: skip
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)])


def test_llama_cpp_applies_the_exported_adapter_as_peft_does(random_adapter, tmp_path):
    folder, ids, hf_base, hf_tuned = random_adapter
    result = export_lora_gguf(folder, default_model_path(), tmp_path / "a.gguf")
    assert result.tensors == 4 * 30 and result.rank == 8 and result.alpha == 16
    cpp_base, cpp_tuned = _llama_logits(ids), _llama_logits(ids, str(tmp_path / "a.gguf"))
    # q and k rows are permuted for llama.cpp's rotary layout: without that this falls to ~0
    corr = np.corrcoef((cpp_tuned - cpp_base).ravel(), (hf_tuned - hf_base).ravel())[0, 1]
    agree_base = (cpp_base.argmax(-1) == hf_base.argmax(-1)).mean()
    agree_tuned = (cpp_tuned.argmax(-1) == hf_tuned.argmax(-1)).mean()
    changed = (hf_tuned.argmax(-1) != hf_base.argmax(-1)).mean()
    print(f"delta corr {corr:.3f}, top-1 agreement base {agree_base:.2f} tuned {agree_tuned:.2f}, "
          f"changed by the adapter {changed:.2f}")  # fmt: skip
    assert corr > 0.85 and changed > 0.1
    assert agree_tuned >= agree_base - 0.15


def test_backend_switches_adapters_by_scale(random_adapter, tmp_path):
    from edgeagent.backends.llamacpp import LlamaCppBackend

    folder, *_ = random_adapter
    export_lora_gguf(folder, default_model_path(), tmp_path / "a.gguf")
    backend = LlamaCppBackend(default_model_path(), n_ctx=512, adapters={"a": tmp_path / "a.gguf"})
    assert backend.adapters == {"a": 1.0}
    backend.set_adapters({"a": 0.0})
    assert backend.adapters == {}
    with pytest.raises(KeyError, match="no adapter named 'b'"):
        backend.set_adapters({"b": 1.0})
    with pytest.raises(ModelFileError, match="not a GGUF LoRA adapter"):
        backend.load_adapter("model", default_model_path())  # a model, not an adapter


def test_a_gguf_adapter_reads_back_as_the_peft_weights_it_came_from(random_adapter, tmp_path):
    """What training from a GGUF adapter (the shipped one) starts from: the very weights, q and
    k rows back in the HF layout."""
    from safetensors.numpy import load_file

    folder, *_ = random_adapter
    exported = json.loads(cli("export", "lora", str(folder), "--out", str(tmp_path / "a.gguf"),
                              "--json").stdout)  # fmt: skip
    assert (exported["tensors"], exported["rank"], exported["alpha"]) == (120, 8, 16)
    saved = load_file(str(folder / "adapter_model.safetensors"))
    modules = {k.removeprefix("base_model.model.").split(".lora_")[0] for k in saved}
    config, weights = read_lora_gguf(tmp_path / "a.gguf", modules, n_head=9, n_kv=3)
    assert config == {"r": 8, "lora_alpha": 16.0,
                      "target_modules": ["k_proj", "o_proj", "q_proj", "v_proj"]}  # fmt: skip
    assert weights.keys() == saved.keys()
    for key, value in saved.items():
        np.testing.assert_array_equal(weights[key], value, err_msg=key)
    with pytest.raises(ModelFileError, match="not a GGUF LoRA adapter"):
        read_lora_gguf(default_model_path(), modules, 9, 3)
    with pytest.raises(AdapterMismatchError, match="no matching layer"):
        read_lora_gguf(tmp_path / "a.gguf", [m for m in modules if "layers.3." not in m], 9, 3)
    # and `run --adapter` applies it: the grammar keeps the call valid whatever it does
    run = json.loads(cli("run", "--adapter", str(tmp_path / "a.gguf"), "--tool-choice",
                         "required", "--yes", "--json", "What time is it?").stdout)  # fmt: skip
    assert run["tool_calls"] and all(c["ok"] for c in run["tool_calls"]), run


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: _cut(d / "adapter_model.safetensors", 5000), "truncated or corrupt"),
        (lambda d: (d / "adapter_model.safetensors").write_bytes(b"\xff" * 64), "corrupt"),
        (lambda d: (d / "adapter_config.json").write_text("{not json"), "not a readable"),
        (lambda d: (d / "adapter_config.json").unlink(), "not a PEFT adapter folder"),
    ],
)
def test_a_damaged_peft_adapter_is_refused_by_export_and_merge(
    random_adapter, tmp_path, damage, message
):
    from edgeagent.converters.merge import load_merged

    folder = tmp_path / "adapter"
    shutil.copytree(random_adapter[0], folder)
    damage(folder)
    with pytest.raises(EdgeAgentError, match=message):
        export_lora_gguf(folder, default_model_path(), tmp_path / "a.gguf")
    with pytest.raises(EdgeAgentError, match=message):
        load_merged(default_model_path(), folder)
    assert not (tmp_path / "a.gguf").exists()


def test_a_truncated_gguf_adapter_is_refused_before_llama_cpp(random_adapter, tmp_path):
    from edgeagent.backends.llamacpp import check_adapter

    export_lora_gguf(random_adapter[0], default_model_path(), tmp_path / "a.gguf")
    _cut(tmp_path / "a.gguf", (tmp_path / "a.gguf").stat().st_size // 2)
    with pytest.raises(ModelFileError, match="is truncated: its tensors need"):
        check_adapter(tmp_path / "a.gguf", "llama")


@pytest.mark.parametrize("stage", ["write_tensors_to_file", "close"])
def test_a_killed_export_leaves_no_adapter_file(random_adapter, tmp_path, stage):
    """SIGKILL while the GGUF is written, or after it is written and before it is renamed:
    no file under the output's name; the same command then works."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import gguf
        from edgeagent.converters.lora_gguf import export_lora_gguf
        from edgeagent.models import default_model_path
        original = gguf.GGUFWriter.{stage}
        def die(self, *a, **k):
            original(self, *a, **k) if "{stage}" == "close" else None
            os.kill(os.getpid(), signal.SIGKILL)
        gguf.GGUFWriter.{stage} = die
        export_lora_gguf(sys.argv[1], default_model_path(), sys.argv[2])
        """
    )
    out = tmp_path / "a.gguf"
    proc = subprocess.run([sys.executable, "-c", script, str(random_adapter[0]), str(out)])
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    from edgeagent.backends.llamacpp import check_adapter

    export_lora_gguf(random_adapter[0], default_model_path(), out)
    check_adapter(out, "llama")


def _cut(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def test_an_adapter_for_another_model_is_refused_with_the_mismatch(tmp_path):
    from peft import LoraConfig, get_peft_model

    config = transformers.LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4)  # fmt: skip
    tiny = get_peft_model(transformers.LlamaForCausalLM(config),
                          LoraConfig(r=4, target_modules=["q_proj"]))  # fmt: skip
    tiny.save_pretrained(tmp_path / "tiny")
    with pytest.raises(AdapterMismatchError, match="hidden size differs"):
        export_lora_gguf(tmp_path / "tiny", default_model_path(), tmp_path / "x.gguf")
    assert list(tmp_path.glob("*.gguf")) == [] and list(tmp_path.glob(".*tmp*")) == []


def test_decoupled_agent_switches_selector_then_argument_adapter(random_adapter, tmp_path):
    from edgeagent import Agent
    from edgeagent.agent import TextDelta
    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.converters.lora_gguf import export_decoupled
    from edgeagent.decoupled import arguments_adapter
    from edgeagent.demo_tools import DEMO_TOOLS

    folder, *_ = random_adapter
    trained = tmp_path / "dual"  # what train --decoupled writes, with random weights
    trained.mkdir()
    (trained / "decoupled.json").write_text(json.dumps(
        {"selector": str(folder), "arguments": {"set_timer": str(folder)}}))  # fmt: skip
    exports = export_decoupled(trained, default_model_path(), tmp_path / "dual-gguf")
    assert sorted(Path(e.path).name for e in exports) == ["selector.gguf", "set_timer.gguf"]

    switches = []
    original = LlamaCppBackend.set_adapters

    def spy(self, scales):
        switches.append(dict(scales))
        return original(self, scales)

    LlamaCppBackend.set_adapters = spy
    try:
        tools = [t for t in DEMO_TOOLS if t.name in ("set_timer", "convert_units")]
        agent = Agent(tools, decoupled=tmp_path / "dual-gguf", tool_choice="required",
                      max_steps=1, allow="all")  # fmt: skip
        events = list(agent.session().stream("Start a 12 minute timer for the pasta"))
    finally:
        LlamaCppBackend.set_adapters = original
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    result = events[-1].result
    assert result.usage.generations == 1 and text.startswith("<tool_call>[{")
    name = json.loads(text[len("<tool_call>") :].removesuffix("</tool_call>"))[0]["name"]
    assert name in ("set_timer", "convert_units")
    phase2 = {arguments_adapter("set_timer"): 1.0} if name == "set_timer" else {}
    assert switches[-2:] == [{"selector": 1.0}, phase2]
    # the grammar made the call valid, and the run executed it
    assert [c.name for c in result.tool_calls] == [name] and result.tool_calls[0].ok, result
    # the same from the command line
    two = tmp_path / "two.py"
    two.write_text("from edgeagent.demo_tools import set_timer, convert_units\n"
                   "TOOLS = [set_timer, convert_units]\n")  # fmt: skip
    out = json.loads(cli("run", "--decoupled", str(tmp_path / "dual-gguf"), "--tools",
                         str(two), "--tool-choice", "required", "--max-steps", "1",
                         "--yes", "--json", "Start a 12 minute timer for the pasta").stdout)  # fmt: skip
    assert out["tool_calls"][0]["name"] in ("set_timer", "convert_units"), out


def test_decoupled_folder_naming_files_outside_is_refused(tmp_path):
    from edgeagent.decoupled import DecoupledAdapters
    from edgeagent.errors import EdgeAgentError

    (tmp_path / "decoupled.json").write_text(
        json.dumps({"selector": "../evil.gguf", "arguments": {}})
    )
    with pytest.raises(EdgeAgentError, match="not a .gguf inside"):
        DecoupledAdapters.load(tmp_path)
    with pytest.raises(EdgeAgentError, match="not a folder of decoupled"):
        DecoupledAdapters.load(tmp_path / "nope")
