"""`edgeagent export gguf`: base (+ adapter) -> merged in fp32 -> GGUF F16 -> quantized with
libllama -> self-checked against the merged model. Every step writes atomically; the
intermediate files live in a temporary folder next to the output and are removed."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeagent.converters.hf_gguf import hf_to_gguf
from edgeagent.converters.merge import merged_work
from edgeagent.converters.quantize import quantize_gguf
from edgeagent.converters.selfcheck import CheckResult, self_check
from edgeagent.errors import EdgeAgentError
from edgeagent.paths import replace_file
from edgeagent.quantization import GGUF_FLOATS, gguf_exportable


@dataclass
class ExportResult:
    path: str
    quant: str
    bytes: int
    seconds: float
    check: CheckResult | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.check:
            out["check"]["passed"] = self.check.passed
        return out


def export_gguf(
    base: str | Path,
    out: str | Path,
    adapter: str | Path | None = None,
    quant: str = "q4_k_m",
    check: bool = True,
    threads: int | None = None,
) -> ExportResult:
    quant = quant.lower()
    if quant not in gguf_exportable():
        raise EdgeAgentError(
            f"unknown format {quant!r}",
            hint=f"one of: {', '.join(gguf_exportable())}",
        )
    out = Path(out)
    start = time.perf_counter()
    with merged_work(base, adapter, out) as (model, tokenizer, work):
        if quant in GGUF_FLOATS:
            hf_to_gguf(work / "hf", work / "model.gguf", quant)
        else:
            hf_to_gguf(work / "hf", work / "f16.gguf", "f16")
            quantize_gguf(work / "f16.gguf", work / "model.gguf", quant, threads)
        result = self_check(work / "model.gguf", model, tokenizer, quant) if check else None
        out.parent.mkdir(parents=True, exist_ok=True)
        replace_file(work / "model.gguf", out)  # only a checked file takes the name
    return ExportResult(
        str(out), quant, out.stat().st_size, round(time.perf_counter() - start, 1), result
    )
