"""The planner's memory estimate against the resident memory of a real agent process.

For each runtime and context length a fresh process imports edgeagent's agent, loads the model,
fills the context (a prompt of n_ctx - 8 tokens, then 4 generated) and reports its peak resident
set (VmHWM) and what it held before the model loaded. The planner's estimate for the same model,
format and n_ctx is printed beside it, with the ratio.

    python benchmarks/bench_plan.py                       # embedded GGUF, 512..8192
    python benchmarks/bench_plan.py --onnx build/onnx-int8 --n-ctx 512 2048
    python benchmarks/bench_plan.py --bundle dist/rpi5   # the bundle's estimate vs its run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys
from pathlib import Path
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
model, n_ctx = sys.argv[1], int(sys.argv[2])
from edgeagent.agent import Agent  # what a running agent has imported
from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.models import is_onnx_folder
if is_onnx_folder(model) or Path(model, "model", "model.onnx").exists():
    import llguidance, onnxruntime, tokenizers  # noqa: F401
else:
    import llama_cpp  # noqa: F401
before = status("VmRSS")
if Path(model, "bundle.toml").exists():  # a bundle: its model, adapters and n_ctx
    backend = Agent.from_bundle(model).backend
    n_ctx = backend.n_ctx
else:  # the backend an agent makes for this model, bare
    backend = Agent([], model=model, adapter=None, n_ctx=n_ctx).backend
text = open(sys.argv[3], encoding="utf-8").read()
ids = backend.tokenize(text)
while len(ids) < n_ctx:
    ids = ids + ids
prompt = ids[: n_ctx - 8]
loaded = getattr(backend, "loaded_adapters", [])
if "adapter" in loaded:  # the agent calls under the adapter ...
    backend.set_adapters({"adapter": 1.0})
out = "".join(backend.generate(prompt, grammar=None, sampling=SamplingParams(),
                               max_tokens=4, stats=GenerationStats()))
if loaded:  # ... and answers in a second context (the base model's or the answer adapter's)
    backend.set_adapters({})
    out = "".join(backend.generate(prompt, grammar=None, sampling=SamplingParams(),
                                   max_tokens=4, stats=GenerationStats()))
print(json.dumps({"before_model": before, "rss": status("VmRSS"), "peak": status("VmHWM")}))
"""


def measure(model: str, n_ctx: int) -> dict[str, int]:
    general = Path(__file__).resolve().parents[1] / "edgeagent" / "data" / "general.txt"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, str(n_ctx), str(general)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from edgeagent.models import default_model_path
    from edgeagent.targets.planner import MIB, estimate, model_shape

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="GGUF file (default: the embedded model)")
    parser.add_argument("--onnx", help="an ONNX export folder to measure as well")
    parser.add_argument("--n-ctx", type=int, nargs="+", default=[512, 2048, 4096, 8192])
    parser.add_argument("--bundle", help="a bundle: its manifest's estimate vs its run")
    args = parser.parse_args()
    if args.bundle:
        from edgeagent.manifest import read_manifest

        manifest = read_manifest(args.bundle)
        got = measure(args.bundle, manifest.n_ctx)
        print(json.dumps({
            "bundle": args.bundle, "target": manifest.target, "n_ctx": manifest.n_ctx,
            "estimate_mib": round(manifest.estimate_bytes / MIB, 1),
            "peak_rss_mib": round(got["peak"] / MIB, 1),
            "estimate_over_peak": round(manifest.estimate_bytes / got["peak"], 3),
        }, indent=2))  # fmt: skip
        return
    models = [args.model or str(default_model_path())] + ([args.onnx] if args.onnx else [])
    rows = []
    for model in models:
        shape = model_shape(model)
        for n_ctx in args.n_ctx:
            got = measure(model, n_ctx)
            est = estimate(shape, shape.format, shape.quantization, n_ctx)
            rows.append({
                "model": Path(model).name, "format": shape.format,
                "quantization": shape.quantization, "n_ctx": n_ctx,
                "estimate_mib": round(est.total / MIB, 1),
                "peak_rss_mib": round(got["peak"] / MIB, 1),
                "rss_before_model_mib": round(got["before_model"] / MIB, 1),
                "estimate_over_peak": round(est.total / got["peak"], 3),
                "parts_mib": {k: round(getattr(est, k) / MIB, 1)
                              for k in ("weights", "kv_cache", "compute", "runtime")},
            })  # fmt: skip
            print(json.dumps(rows[-1]), file=sys.stderr)
    worst = max(abs(r["estimate_over_peak"] - 1) for r in rows)
    print(json.dumps({"rows": rows, "worst_error": round(worst, 3)}, indent=2))


if __name__ == "__main__":
    main()
