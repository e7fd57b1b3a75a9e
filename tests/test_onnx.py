"""ONNX export (onnxruntime-genai's model builder; optimum for int8-dynamic) and the onnxruntime
backend with llguidance grammars, on a tiny model; skipped without the train and onnx extras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("llguidance")

from edgeagent import Agent  # noqa: E402
from edgeagent.backends import GenerationStats, SamplingParams  # noqa: E402
from edgeagent.backends.onnx import OnnxBackend  # noqa: E402
from edgeagent.converters.onnx_export import export_onnx, onnx_logits  # noqa: E402
from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.errors import ModelFileError  # noqa: E402
from tests.conftest import tiny_model  # noqa: E402
from tests.test_cli import cli  # noqa: E402


@pytest.fixture(scope="module")
def hf_dir(hf_tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-hf")
    model = tiny_model(hf_tokenizer)
    model.config.max_position_embeddings = 4096  # the builder's rotary tables end there
    model.save_pretrained(folder)
    hf_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def exported(hf_dir, tmp_path_factory):
    return export_onnx(hf_dir, tmp_path_factory.mktemp("onnx") / "fp32", quant="fp32")


@pytest.fixture(scope="module")
def onnx_dirs(exported, hf_dir, tmp_path_factory):
    """fp32 and int8 from the library; int4 as a user makes it, with `edgeagent export onnx`."""
    root = tmp_path_factory.mktemp("onnx-q")
    out = {"fp32": exported.path}
    out["int8"] = export_onnx(hf_dir, root / "int8", quant="int8", check=False).path
    # optimum's graph, which int8-dynamic (and exports before onnxruntime-genai) are
    out["int8-dynamic"] = export_onnx(hf_dir, root / "dyn", quant="int8-dynamic", check=False).path
    made = json.loads(cli("export", "onnx", "--base", str(hf_dir), "--quant", "int4",
                          "--block-size", "32", "--out", str(root / "int4"), "--json").stdout)  # fmt: skip
    assert made["path"] == str(root / "int4") and made["quant"] == "int4"
    assert made["check"]["passed"] and made["check"]["tokens"] > 0  # it was self-checked
    out["int4"] = made["path"]
    return out


def size(folder):
    return sum(f.stat().st_size for f in Path(folder).iterdir())


def test_fp32_export_agrees_with_the_reference(exported):
    check = exported.check
    assert check is not None and check.passed and check.top1_agreement >= 0.99
    assert abs(check.perplexity / check.reference_perplexity - 1) < 0.01
    assert not list(Path(exported.path).parent.glob(".*"))  # no work folder left


def test_int8_and_int4_are_smaller_and_run(onnx_dirs, hf_tokenizer):
    # (int8 is not smaller than fp32 at this size: the builder keeps the embedding in fp32 for
    # int8, shared with the head in fp32 and int4, and a 64-wide model is mostly embedding)
    assert size(onnx_dirs["int4"]) < min(size(onnx_dirs["int8"]), size(onnx_dirs["fp32"]))
    ids = hf_tokenizer("The river runs past the old mill", add_special_tokens=False)["input_ids"]
    ref = onnx_logits(onnx_dirs["fp32"], ids)
    for quant in ("int8", "int4"):
        got = onnx_logits(onnx_dirs[quant], ids)
        assert got.shape == ref.shape and np.isfinite(got).all()
        sidecar = json.loads((Path(onnx_dirs[quant]) / "edgeagent.json").read_text())
        assert sidecar["format"] == "onnx" and sidecar["quant"] == quant


@pytest.mark.parametrize("quant", ["fp32", "int4", "int8-dynamic"])
def test_the_kv_cache_gives_the_logits_of_a_full_pass(onnx_dirs, hf_tokenizer, quant):
    from edgeagent.backends.onnx import GenAIDecoder, PastDecoder, open_decoder

    folder = Path(onnx_dirs[quant])
    ids = hf_tokenizer("Computers store numbers in binary", add_special_tokens=False)["input_ids"]
    full = onnx_logits(folder, ids)  # one token at a time from an empty cache
    decoder = open_decoder(folder, n_ctx=64)
    kind = PastDecoder if quant == "int8-dynamic" else GenAIDecoder
    assert isinstance(decoder, kind)

    def same(a, b):
        if quant != "int8-dynamic":
            return np.allclose(a, b, atol=1e-4)
        # dynamic quantization scales activations by what a pass holds: noise between passes
        # of other lengths, which leaves this peaked model's top tokens where they are
        return list(np.argsort(a)[-3:]) == list(np.argsort(b)[-3:])

    assert same(decoder.feed(ids[:-2]), full[-3])  # several at once
    assert same(decoder.feed(ids[-2:]), full[-1])
    decoder.feed([5, 6, 7])  # then back to a shared prefix: a rewind, not a new pass
    decoder.keep(len(ids) - 1)
    assert same(decoder.feed(ids[-1:]), full[-1])


def test_the_agent_makes_a_valid_call_on_onnx_under_the_grammar(onnx_dirs):
    # a random model writes whatever the grammar lets it: a call the schema admits
    agent = Agent(DEMO_TOOLS, model=onnx_dirs["int4"], tool_choice="required", max_steps=1)
    result = agent.run("Start a 12 minute timer for the pasta")
    assert result.tool_calls, result.problems
    call = result.tool_calls[0]
    tool = next(t for t in DEMO_TOOLS if t.name == call.name)
    tool.validate(call.arguments)  # what the grammar admitted, pydantic accepts
    assert agent.backend.name == "onnxruntime"


def test_a_shared_prefix_is_not_evaluated_again(onnx_dirs):
    backend = OnnxBackend(onnx_dirs["fp32"])
    prompt = backend.tokenize("<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n")
    first, second = GenerationStats(), GenerationStats()
    a = "".join(backend.generate(prompt, grammar=None, sampling=SamplingParams(),
                                 max_tokens=8, stats=first))  # fmt: skip
    b = "".join(backend.generate(prompt, grammar=None, sampling=SamplingParams(),
                                 max_tokens=8, stats=second))  # fmt: skip
    assert a == b and first.cached_tokens == 0 and second.cached_tokens == len(prompt) - 1


def test_a_folder_without_a_model_or_a_corrupt_model_is_refused(onnx_dirs, tmp_path):
    with pytest.raises(ModelFileError, match="model.onnx is missing"):
        OnnxBackend(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (broken / name).write_text((Path(onnx_dirs["fp32"]) / name).read_text())
    (broken / "model.onnx").write_bytes(b"\x08\x07not a protobuf")
    with pytest.raises(ModelFileError, match="onnxruntime cannot load it"):
        OnnxBackend(broken)
    # the same for the builder's folders, which onnxruntime-genai loads
    (broken / "genai_config.json").write_text(
        (Path(onnx_dirs["int4"]) / "genai_config.json").read_text()
    )
    with pytest.raises(ModelFileError, match="onnxruntime cannot load it"):
        OnnxBackend(broken)
