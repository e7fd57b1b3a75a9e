"""GGUF quantization with libllama's own quantizer (`llama_model_quantize`, through
llama-cpp-python): K-quants and IQ4_NL included, the same code `llama-quantize` runs."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

from edgeagent.errors import EdgeAgentError
from edgeagent.paths import replace_file

#: our name -> the llama_ftype constant's name in llama_cpp
QUANTS = {
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
    "bf16": "LLAMA_FTYPE_MOSTLY_BF16",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "iq4_nl": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
}


@dataclass
class QuantizeResult:
    path: str
    quant: str
    bytes: int


def quantize_gguf(
    src: str | Path, out: str | Path, quant: str, threads: int | None = None
) -> QuantizeResult:
    """`src` (an F32/F16/BF16 GGUF) -> `out` in `quant`; atomic (temporary name, rename)."""
    import llama_cpp

    from edgeagent.models import inspect_gguf

    key = quant.lower()
    if key not in QUANTS:
        raise EdgeAgentError(f"unknown quantization {quant!r}", hint=f"one of: {', '.join(QUANTS)}")
    src, out = Path(src), Path(out)
    inspect_gguf(src)  # a corrupt input is refused before libllama reads it
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTS[key])
    params.nthread = threads or len(os.sched_getaffinity(0))
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        rc = llama_cpp.llama_model_quantize(
            str(src).encode(), str(tmp).encode(), ctypes.byref(params)
        )
        if rc != 0:
            raise EdgeAgentError(f"llama_model_quantize failed on {src} ({quant}, code {rc})")
        replace_file(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return QuantizeResult(str(out), key, out.stat().st_size)
