"""Export formats for the embedded model fine-tuned with an adapter: for GGUF F16 / Q8_0 /
Q4_K_M / Q4_0 and ONNX INT8 / INT8-dynamic / INT4, the export time (without the self-check),
size, top-1 agreement and perplexity against the merged fp32 model (the self-check's figures,
and whether its threshold passes), and the decode speed in the agent (llama.cpp vs onnxruntime,
same prompt, same threads). Then the two ways to ship a fine-tune, compared on quality and speed:
the GGUF LoRA adapter on the embedded Q4_1 base vs the merged model requantized. Prints JSON.

    python benchmarks/bench_export.py --adapter build/default-adapter/peft [--cases 40]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from quality import score_examples  # noqa: E402

from edgeagent import Agent  # noqa: E402
from edgeagent.backends.llamacpp import LlamaCppBackend, default_threads  # noqa: E402
from edgeagent.converters.lora_gguf import export_lora_gguf  # noqa: E402
from edgeagent.converters.merge import load_merged  # noqa: E402
from edgeagent.converters.onnx_export import export_onnx, onnx_logits  # noqa: E402
from edgeagent.converters.pipeline import export_gguf  # noqa: E402
from edgeagent.converters.selfcheck import (  # noqa: E402
    SelfCheckError,
    compare,
    general_ids,
    reference_logits,
    self_check,
)
from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.toolbank import bank_tools, synthesize_bank  # noqa: E402

PROMPT = "Start a 12 minute timer for the pasta"


def decode_speed(model: str, adapter: str | None = None, runs: int = 3) -> dict:
    """Median decode tokens/s of the agent's first reply (tool_choice required, greedy)."""
    agent = Agent(DEMO_TOOLS, model=model, adapter=adapter, tool_choice="required",
                  max_steps=1, n_threads=default_threads(), allow="all")  # fmt: skip
    speeds, firsts = [], []
    for _ in range(runs):
        result = agent.run(PROMPT).to_dict()
        speeds.append(result["timings"]["decode_tokens_per_s"])
        firsts.append(result["timings"]["ttft_s"])
    return {"decode_tokens_per_s": statistics.median(speeds),
            "ttft_s": round(statistics.median(firsts), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapter", type=Path, required=True, help="a PEFT adapter folder")
    parser.add_argument("--cases", type=int, default=40, help="held-out cases for quality")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="edgeagent-export-"))
    base = default_model_path()
    report: dict = {"base": "SmolLM2-135M-Instruct Q4_1 (embedded)", "adapter": str(args.adapter),
                    "threads": default_threads(), "formats": {}}  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):
        model, tokenizer = load_merged(base, args.adapter)  # the fp32 reference
        ids = general_ids(tokenizer)
        reference = reference_logits(model, ids)
        for quant in ("f16", "q8_0", "q4_k_m", "q4_0"):
            r = export_gguf(base, out / f"{quant}.gguf", args.adapter, quant, check=False)
            check = _checked(lambda: self_check(r.path, model, tokenizer, quant))  # noqa: B023
            report["formats"][f"gguf_{quant}"] = {**_row(r, check), **decode_speed(r.path)}
        for quant in ("int8", "int8-dynamic", "int4"):
            r = export_onnx(base, out / f"onnx-{quant}", args.adapter, quant, check=False)
            got = onnx_logits(r.path, ids)
            check = _checked(lambda: compare(reference, got, ids, quant))  # noqa: B023
            report["formats"][f"onnx_{quant}"] = {**_row(r, check), **decode_speed(r.path)}
        lora = export_lora_gguf(args.adapter, base, out / "adapter.gguf", "f16").path
        held = [parse_example(d) for d in synthesize_bank(bank_tools("held-out"), args.cases, 99)]
        ship: dict = {}
        for label, model, adapter in (
            ("lora_on_q4_1_base", str(base), lora),
            ("merged_q4_k_m", str(out / "q4_k_m.gguf"), None),
            ("merged_q8_0", str(out / "q8_0.gguf"), None),
        ):
            adapters = {"ft": adapter} if adapter else {}
            backend = LlamaCppBackend(model, n_ctx=4096, adapters=adapters)
            if adapter:
                backend.set_adapters({"ft": 1.0})
            ship[label] = {
                "bytes": Path(model).stat().st_size
                + (Path(adapter).stat().st_size if adapter else 0),
                "unseen_tools": score_examples(backend, held),
                **decode_speed(model, adapter),
            }
        report["ship"] = ship
    print(json.dumps(report, indent=2))


def _checked(run) -> tuple:
    """(the check's figures, whether the export's self-check passes them)."""
    try:
        return run(), True
    except SelfCheckError as exc:
        return exc.result, False


def _row(result, checked) -> dict:
    c, passed = checked
    return {
        "bytes": result.bytes, "export_s": result.seconds, "top1_agreement": c.top1_agreement,
        "perplexity": c.perplexity, "reference_perplexity": c.reference_perplexity,
        "threshold": c.threshold, "self_check_passes": passed,
    }  # fmt: skip


if __name__ == "__main__":
    main()
