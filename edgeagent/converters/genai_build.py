"""onnxruntime-genai's model builder, run on an HF folder: the graph it writes (fused
GroupQueryAttention, rotary caches, MatMulNBits int4/int8 weights) and its `genai_config.json`
are what onnxruntime-genai's generator runs with the KV cache kept in place.

The builder runs in a child process (`python -m edgeagent.converters.genai_build ARGS`): it puts
its own folder on sys.path and imports top-level modules of its own (`builders`,
`quantization`), which must not meet ours. It imports every model class it knows from
transformers at the top, some of which transformers releases before 5 do not have; those names
are given stand-ins that nothing calls, since a model of those families is not what it builds
here (llama and qwen2 classes, which every supported transformers has, are the real ones).
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

from edgeagent.errors import EdgeAgentError

#: what `edgeagent export onnx` names its formats -> the builder's --precision
PRECISIONS = {"int4": "int4", "int8": "int8", "fp32": "fp32"}

_BUILDER = "onnxruntime_genai.models.builder"
_NAMED_AT_IMPORT = (
    "Gemma3ForConditionalGeneration",
    "Lfm2VlForConditionalGeneration",
    "Mistral3ForConditionalGeneration",
    "Qwen2_5_VLForConditionalGeneration",
    "Qwen3_5ForConditionalGeneration",
    "Qwen3_5MoeForConditionalGeneration",
    "Qwen3VLForConditionalGeneration",
)


def build(hf: Path, out: Path, quant: str, block_size: int = 32) -> None:
    """Write onnxruntime-genai's graph of the HF model in `hf` to `out` (a new folder)."""
    try:
        import onnxruntime_genai  # noqa: F401
    except ImportError:
        raise EdgeAgentError(
            "ONNX export needs onnxruntime-genai", hint='pip install -e ".[onnx]"'
        ) from None
    options = ["is_symmetric=true", f"block_size={block_size}"]
    if quant == "int8":
        # float activations: 99.1 % top-1 agreement at 7.7 tokens/s on 2 cores; the CPU
        # default (8-bit activations, as llama.cpp's Q8_0) decodes at 185 but agrees 97.0 %,
        # under the self-check's bar. int8 is the accurate choice; int4 the fast one
        options.append("accuracy_level=1")
    # Tried and dropped (the builder's int4 with the embedding shared with the head, as this
    # model ties them): the head in 8 bits (last_matmul:int8) and asymmetric blocks both write
    # graphs onnxruntime refuses.
    cmd = [sys.executable, "-m", __name__, "-m", str(hf), "-i", str(hf), "-o", str(out),
           "-p", PRECISIONS[quant], "-e", "cpu", "-c", str(out.parent / "builder-cache"),
           "--extra_options", *options]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (out / "genai_config.json").exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EdgeAgentError(
            f"onnxruntime-genai's model builder failed: {' / '.join(tail) or 'no output'}",
            hint="the builder knows llama, qwen2, phi, gemma and mistral families",
        )


def _stand_ins() -> None:
    import transformers

    available = set(dir(transformers))
    for name in _NAMED_AT_IMPORT:
        if name not in available:
            setattr(transformers, name, type(name, (), {}))
    # the builder reads rotary settings as transformers 5 keeps them (`rope_parameters`);
    # before 5 they are `rope_theta` and `rope_scaling` (null when plain)
    load = transformers.AutoConfig.from_pretrained

    def from_pretrained(*args, **kwargs):  # type: ignore[no-untyped-def]
        config = load(*args, **kwargs)
        if not hasattr(config, "rope_parameters") and hasattr(config, "rope_theta"):
            scaling = getattr(config, "rope_scaling", None) or {}
            config.rope_scaling = scaling
            config.rope_parameters = {"rope_type": "default", "rope_theta": config.rope_theta,
                                      **scaling}  # fmt: skip
        return config

    transformers.AutoConfig.from_pretrained = from_pretrained  # type: ignore[method-assign]


if __name__ == "__main__":
    _stand_ins()
    sys.argv = [_BUILDER, *sys.argv[1:]]
    runpy.run_module(_BUILDER, run_name="__main__", alter_sys=True)
