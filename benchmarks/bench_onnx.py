"""ONNX (onnxruntime-genai's graph and generator, through edgeagent's backend) against raw
llama-cpp-python on the same model at 4 bits, the same threads and the same context. Prints JSON.

The embedded SmolLM2-135M-Instruct: llama.cpp runs its Q4_1 GGUF; the ONNX side is the same
weights exported by `edgeagent export onnx --quant int4` (dequantized, then the builder's int4
MatMulNBits in blocks of 32). Each engine runs in a fresh process, alternating, so that peak
resident memory (VmHWM) is its own; "model memory" is the peak less what the process held before
the model loaded (the engine's libraries), with the context filled to n_ctx - 8 tokens after the
decode measurement (what a long conversation reaches; the planner plans for it). Greedy
decoding of the same prompt, no grammar on either side (what the grammar costs the ONNX backend:
benchmarks/bench_onnx_grammar.py).

    python benchmarks/bench_onnx.py [--onnx DIR] [--repeats 3] [--tokens 128] [--n-ctx 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROMPT = (
    "<|im_start|>user\nWrite a short story about a robot who learns to cook pasta."
    "<|im_end|>\n<|im_start|>assistant\n"
)

CHILD = r"""
import json, sys, time
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
engine, model, n_ctx, tokens, threads, prompt, filler = sys.argv[1:8]
n_ctx, tokens, threads = int(n_ctx), int(tokens), int(threads)
out = {}
if engine == "llama.cpp":
    from llama_cpp import Llama
    before = status("VmRSS")
    llm = Llama(model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    ids = llm.tokenize(prompt.encode(), special=True)
    start = time.perf_counter()
    first, n = 0.0, 0
    for _ in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
        if not first:
            first = time.perf_counter()
        else:
            n += 1  # tokens after the first, timed from the first
        if n >= tokens - 1:
            break
    end = time.perf_counter()
    decode_peak = status("VmHWM")
    long = llm.tokenize(open(filler, encoding="utf-8").read().encode())
    while len(long) < n_ctx:
        long = long + long
    llm.reset()
    for i, _ in enumerate(llm.generate(long[: n_ctx - 8], temp=0.0, top_k=1)):
        if i >= 3:
            break
else:
    from edgeagent.backends import GenerationStats, SamplingParams
    from edgeagent.backends.onnx import OnnxBackend
    before = status("VmRSS")
    backend = OnnxBackend(model, n_ctx=n_ctx, n_threads=threads)
    ids = backend.tokenize(prompt)
    stats = GenerationStats()
    start = time.perf_counter()
    for _ in backend.generate(ids, grammar=None, sampling=SamplingParams(),
                              max_tokens=tokens, stats=stats):
        pass
    first = start + stats.prompt_eval_s
    end, n = first + stats.decode_s, stats.completion_tokens - 1  # after the first, as above
    decode_peak = status("VmHWM")
    long = backend.tokenize(open(filler, encoding="utf-8").read())
    while len(long) < n_ctx:
        long = long + long
    for _ in backend.generate(long[: n_ctx - 8], grammar=None, sampling=SamplingParams(),
                              max_tokens=4, stats=GenerationStats()):
        pass
peak = status("VmHWM")
print(json.dumps({"prompt_tokens": len(ids), "prefill_s": first - start,
                  "decode_tokens": n, "decode_tokens_per_s": n / (end - first),
                  "decode_peak_rss_mb": decode_peak / 2**20,
                  "peak_rss_mb": peak / 2**20, "model_mb": (peak - before) / 2**20}))
"""


def run_child(engine: str, model: str, args: argparse.Namespace) -> dict:
    filler = Path(__file__).resolve().parents[1] / "edgeagent" / "data" / "general.txt"
    cmd = [sys.executable, "-c", CHILD, engine, model, str(args.n_ctx), str(args.tokens),
           str(args.threads), PROMPT, str(filler)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx", help="an int4 export of the embedded model (else made here)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from edgeagent.models import default_model_path

    gguf = str(default_model_path())
    onnx = args.onnx
    if onnx is None:
        from edgeagent.converters.onnx_export import export_onnx

        onnx = os.path.join(tempfile.mkdtemp(prefix="bench-onnx-"), "int4")
        export_onnx(gguf, onnx, quant="int4", check=False)
    engines = {"llama.cpp": gguf, "onnx": onnx}
    runs: dict[str, list[dict]] = {e: [] for e in engines}
    for _ in range(args.repeats):  # alternating, so that drift hits both
        for engine, model in engines.items():
            runs[engine].append(run_child(engine, model, args))
    keys = ("decode_tokens_per_s", "prefill_s", "decode_peak_rss_mb", "peak_rss_mb", "model_mb",
            "prompt_tokens")  # fmt: skip
    summary = {e: {k: median(r, k) for k in keys} for e, r in runs.items()}
    llama, ours = summary["llama.cpp"], summary["onnx"]
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "model": "SmolLM2-135M-Instruct: GGUF Q4_1 (llama.cpp) vs ONNX int4 (onnxruntime-genai)",
        "threads": args.threads,
        "n_ctx": args.n_ctx,
        "decode_tokens": args.tokens,
        "repeats": args.repeats,
        "median": summary,
        "runs": runs,
        # <= 1.5 is the goal: how many times faster llama.cpp decodes than the ONNX path
        "decode_ratio_vs_llamacpp": round(
            llama["decode_tokens_per_s"] / ours["decode_tokens_per_s"], 3
        ),
        # peak resident memory with the context filled (n_ctx - 8 tokens, then 4 generated),
        # ONNX / llama.cpp: the whole process, and the model's part
        "memory_ratio_vs_llamacpp": round(ours["peak_rss_mb"] / llama["peak_rss_mb"], 3),
        "model_memory_ratio_vs_llamacpp": round(ours["model_mb"] / llama["model_mb"], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
