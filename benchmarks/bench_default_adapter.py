"""The shipped general adapter vs the bare embedded model, both with the grammar on, tool_choice
auto, greedy, in the llama.cpp runtime (one backend, the adapter switched by scale). Prints one
JSON object.

- unseen_tools: requests for the tool bank's held-out tools, which the adapter never saw in
  training (each case offers its tools plus up to 3 other held-out ones; a quarter ask for a
  tool that is not offered, some are off-topic): exact match of the calls, or of "no call".
- seen_tools: new requests and values for the tools it was trained on.
- demo: the prompts of the docs with every demo tool offered, as `edgeagent run` does.
- BFCL simple_python / multiple / irrelevance, or the categories of --bfcl (from the bfcl-eval
  package; never trained on).

    python benchmarks/bench_default_adapter.py [--adapter A.gguf ...] [--cases 80] [--bfcl-limit 50]
        [--bfcl simple_python,multiple,irrelevance] [--no-base]

With several --adapter, each is scored on the same cases in the same run ("adapter",
"adapter1", ...). The bare model is the slow part (it answers at length where an adapter
calls): `--no-base` leaves it out when comparing adapters, the first of them the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from quality import first_reply, score_bfcl, score_examples  # noqa: E402

from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.bfcl import load_cases  # noqa: E402
from edgeagent.demo_tools import DEMO_PROMPTS, DEMO_TOOLS, demo_reply_is_right  # noqa: E402
from edgeagent.models import DEFAULT_ADAPTER, default_model_path  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.toolbank import bank_tools, synthesize_bank  # noqa: E402


def score_demo(backend) -> dict:
    rows = []
    for prompt, name, args in DEMO_PROMPTS:
        got = first_reply(backend, DEMO_TOOLS, prompt)
        ok = demo_reply_is_right(name, args, got)
        rows.append({"prompt": prompt, "ok": ok, "calls": got})
    return {"cases": len(rows), "right": sum(r["ok"] for r in rows), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--adapter",
        type=Path,
        action="append",
        help="a GGUF LoRA to score (repeatable; default: the shipped one)",
    )
    parser.add_argument("--cases", type=int, default=80, help="synthesized cases per set")
    parser.add_argument("--bfcl-limit", type=int, default=50)
    parser.add_argument(
        "--bfcl",
        default="simple_python,multiple,irrelevance",
        help="BFCL categories, comma-separated (e.g. also parallel,parallel_multiple,"
        "live_simple,live_irrelevance)",
    )
    parser.add_argument("--no-base", action="store_true", help="score the adapters only")
    args = parser.parse_args()
    unseen = [parse_example(d) for d in synthesize_bank(bank_tools("held-out"), args.cases, 99)]
    seen = [parse_example(d) for d in synthesize_bank(bank_tools("train"), args.cases, 98)]
    bfcl = {c: load_cases(c, args.bfcl_limit) for c in args.bfcl.split(",") if c}
    paths = args.adapter or [DEFAULT_ADAPTER]
    adapters = {f"adapter{i or ''}": path for i, path in enumerate(paths)}
    backend = LlamaCppBackend(default_model_path(), n_ctx=4096, adapters=adapters)
    report: dict = {
        "model": "SmolLM2-135M-Instruct Q4_1 (embedded)",
        "adapters": {k: {"path": str(v), "bytes": v.stat().st_size} for k, v in adapters.items()},
        "grammar": True,
        "tool_choice": "auto",
    }
    for label in ([] if args.no_base else ["base"]) + list(adapters):
        backend.set_adapters({} if label == "base" else {label: 1.0})
        start = time.perf_counter()
        report[label] = {
            "unseen_tools": score_examples(backend, unseen),
            "seen_tools": score_examples(backend, seen),
            "demo": score_demo(backend),
            **score_bfcl(backend, bfcl),
            "seconds": round(time.perf_counter() - start, 1),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
