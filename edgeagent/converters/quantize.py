"""GGUF quantization with libllama's own quantizer (`llama_model_quantize`, through
llama-cpp-python): K-quants and IQ4_NL included, the same code `llama-quantize` runs."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

from edgeagent.errors import EdgeAgentError
from edgeagent.paths import publishing
from edgeagent.quantization import QUANTIZATIONS

#: our name -> the llama_ftype constant's name in llama_cpp
QUANTS = {q.name: q.llama_ftype for q in QUANTIZATIONS if q.llama_ftype}


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
    with publishing(out) as tmp:
        rc = llama_cpp.llama_model_quantize(
            str(src).encode(), str(tmp).encode(), ctypes.byref(params)
        )
        if rc != 0:
            raise EdgeAgentError(f"llama_model_quantize failed on {src} ({quant}, code {rc})")
    return QuantizeResult(str(out), key, out.stat().st_size)
