"""Escalation on BFCL: the default configuration with a fallback server, against the same
configuration alone, in one run. Prints one JSON object.

The fallback is a second `edgeagent serve` process running another model: the only model
file this project may load is the embedded 135M one, so "another model" is that model with
another adapter (`--fallback-adapter`, e.g. the parallel-calls trial adapter), a stand-in for
a larger model behind vLLM or llama.cpp's server; the path is the one a real fallback takes
(HTTP, the OpenAI API, the same validation and permission rules). Each case is one turn of an
Agent (max_steps 2: the first reply may call, the second answers; the first reply's calls are
what BFCL scores) with `min_confidence` set:
a first reply below it, or one that fails validation, is asked of the fallback.

    python benchmarks/bench_escalation.py --fallback-adapter build/trial/adapter.gguf \
        --min-confidence 0.9 --limit 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeagent.agent import Agent  # noqa: E402
from edgeagent.bfcl import function_tools  # noqa: E402
from edgeagent.evaluation.checker import check_case  # noqa: E402
from edgeagent.evaluation.runner import Evaluator, bfcl_cases  # noqa: E402
from edgeagent.fallback import Fallback  # noqa: E402
from edgeagent.models import ANSWER_ADAPTER, DEFAULT_ADAPTER  # noqa: E402
from tests.test_serve import start_server  # noqa: E402

CATEGORIES = "simple_python,multiple,parallel,irrelevance,live_simple,live_irrelevance"


def noop(**_: object) -> str:
    return "ok"


def run_case(backend, case, threshold: float, fallback: Fallback | None) -> dict:
    tools = [dataclasses.replace(t, fn=noop) for t in function_tools(case.functions)]
    agent = Agent(
        tools,
        backend=backend,
        adapter=DEFAULT_ADAPTER,
        answer_adapter=ANSWER_ADAPTER if ANSWER_ADAPTER.exists() else None,
        base_answers=True,
        max_steps=2,  # the last step may only answer: the first may call
        allow="all",
        min_confidence=threshold if fallback else 0.0,
        fallback=fallback,
    )
    result = agent.run(case.question)
    calls = [(c.name, c.arguments) for c in result.tool_calls]
    return {
        "id": case.id,
        "category": case.category,
        "ok": check_case(case.functions, calls, case.expected).ok,
        "confidence": result.confidence,
        "escalated": result.escalated,
        "escalation_error": result.escalation_error,
    }


def summary(rows: list[dict]) -> dict:
    out = {}
    for cat in dict.fromkeys(r["category"] for r in rows):
        mine = [r for r in rows if r["category"] == cat]
        out[cat] = {
            "accuracy": round(sum(r["ok"] for r in mine) / len(mine), 3),
            "escalated": round(sum(r["escalated"] for r in mine) / len(mine), 3),
        }
    out["overall"] = {
        "accuracy": round(sum(r["ok"] for r in rows) / len(rows), 3),
        "escalated": round(sum(r["escalated"] for r in rows) / len(rows), 3),
        "fallback_errors": sum(bool(r["escalation_error"]) for r in rows),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fallback-adapter", type=Path, required=True)
    parser.add_argument("--min-confidence", type=float, default=0.9)
    parser.add_argument("--bfcl", default=CATEGORIES)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rows-out")
    args = parser.parse_args()
    cases = bfcl_cases(args.bfcl.split(","), args.limit)
    proc, url = start_server(Path(os.environ["EDGEAGENT_HOME"]), "--adapter",
                             str(args.fallback_adapter))  # fmt: skip
    url += "/v1"
    try:
        backend = Evaluator().backend  # the shipped adapter and answer adapter, loaded
        fallback = Fallback(url, timeout_s=120)
        rows = {"alone": [], "with_fallback": []}
        start = time.perf_counter()
        for case in cases:
            rows["alone"].append(run_case(backend, case, args.min_confidence, None))
            rows["with_fallback"].append(run_case(backend, case, args.min_confidence, fallback))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if args.rows_out:
        with open(args.rows_out, "w") as fh:
            for name, mine in rows.items():
                fh.write("".join(json.dumps({"config": name, **r}) + "\n" for r in mine))
    print(json.dumps({
        "local": "embedded SmolLM2-135M + shipped adapter (the default configuration)",
        "fallback": f"edgeagent serve --adapter {args.fallback_adapter}",
        "min_confidence": args.min_confidence,
        "cases": len(cases),
        "seconds": round(time.perf_counter() - start, 1),
        **{name: summary(mine) for name, mine in rows.items()},
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
