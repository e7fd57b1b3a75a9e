"""`edgeagent export onnx`: base (+ adapter, merged in fp32) -> onnxruntime-genai's model builder
(fused attention, int4/int8 MatMulNBits weights in blocks, `genai_config.json`), or for
int8-dynamic optimum's exporter + onnxruntime's quantize_dynamic -> self-checked against the
merged model.

The output is a folder: `model.onnx` (+ its external data), the tokenizer files, `config.json`
and `edgeagent.json`, which the onnxruntime backend (edgeagent.backends.onnx) runs. Built in a
hidden folder beside the output and renamed into place only once checked.

Why the builder: on the same 2 threads the embedded model decodes at about 200-260 tokens/s
through onnxruntime-genai's graph and generator against 24-40 through optimum's graph and a
numpy KV cache (benchmarks/bench_onnx.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from edgeagent.converters import genai_build
from edgeagent.converters.hf_gguf import SIDECAR
from edgeagent.converters.merge import merged_work
from edgeagent.converters.pipeline import ExportResult
from edgeagent.converters.selfcheck import compare, general_ids, reference_logits
from edgeagent.errors import EdgeAgentError
from edgeagent.models import ONNX_MODEL_FILE
from edgeagent.paths import swap_in
from edgeagent.quantization import names

ONNX_QUANTS = names("onnx")
MODEL_FILE = ONNX_MODEL_FILE
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def export_onnx(
    base: str | Path,
    out: str | Path,
    adapter: str | Path | None = None,
    quant: str = "int4",
    block_size: int = 32,
    check: bool = True,
) -> ExportResult:
    quant = quant.lower()
    if quant not in ONNX_QUANTS:
        raise EdgeAgentError(
            f"unknown ONNX format {quant!r}", hint=f"one of: {', '.join(ONNX_QUANTS)}"
        )
    out = Path(out)
    start = time.perf_counter()
    with merged_work(base, adapter, out) as (model, tokenizer, work):
        final = work / "final"
        if quant == "int8-dynamic":
            _optimum_dynamic(work / "hf", work, final)
        else:
            genai_build.build(work / "hf", final, quant, block_size)
        for name in (*_TOKENIZER_FILES, SIDECAR, "config.json"):
            if (work / "hf" / name).exists():
                shutil.copy2(work / "hf" / name, final / name)
        _note(final, quant, block_size)
        result = None
        if check:
            ids = general_ids(tokenizer)
            result = compare(reference_logits(model, ids), onnx_logits(final, ids), ids, quant)
        swap_in(final, out)
    size = sum(f.stat().st_size for f in out.iterdir())
    return ExportResult(str(out), quant, size, round(time.perf_counter() - start, 1), result)


def _optimum_dynamic(hf: Path, work: Path, final: Path) -> None:
    """optimum's graph in fp32, then onnxruntime's dynamic quantization, which also quantizes
    the activations on the fly (62 % top-1 agreement on the 135M model, against 99 % for int8)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from optimum.exporters.onnx import main_export
    except ImportError:
        raise EdgeAgentError(
            "int8-dynamic needs optimum-onnx and onnxruntime", hint='pip install -e ".[onnx]"'
        ) from None
    fp32 = work / "fp32"
    main_export(
        str(hf), output=str(fp32), task="text-generation-with-past", device="cpu",
        do_validation=False, local_files_only=True,
    )  # fmt: skip
    final.mkdir(parents=True)
    quantize_dynamic(
        str(fp32 / MODEL_FILE), str(final / MODEL_FILE), weight_type=QuantType.QInt8,
        use_external_data_format=True, op_types_to_quantize=["MatMul"],
    )  # fmt: skip
    for name in os.listdir(fp32):
        if not name.startswith(MODEL_FILE):
            shutil.copy2(fp32 / name, final / name)


def _note(folder: Path, quant: str, block_size: int) -> None:
    """Record the format in the folder's edgeagent.json."""
    sidecar = json.loads((folder / SIDECAR).read_text())
    block = None if quant == "int8-dynamic" else block_size
    sidecar.update(format="onnx", quant=quant, block_size=block)
    (folder / SIDECAR).write_text(json.dumps(sidecar, indent=2))


def onnx_logits(folder: str | Path, ids: list[int], threads: int | None = None) -> np.ndarray:
    """Logits at every position of `ids` ([len(ids), vocab]), from an empty cache."""
    from edgeagent.backends.onnx import PastDecoder, open_decoder

    decoder = open_decoder(Path(folder), len(ids) + 1, threads)
    if isinstance(decoder, PastDecoder):  # optimum's graph gives every position in one pass
        return decoder.model.forward(ids, past=None)[0][0]
    return np.stack([decoder.feed([token]) for token in ids])  # the generator: the last only
