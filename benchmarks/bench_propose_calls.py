"""Asking the model for one more call (edgeagent.replies.propose_calls) against replies as the
model ends them, on BFCL, in one run. Prints one JSON object.

Each case's first reply is generated both ways by the default configuration (the shipped
adapter, its call threshold, the grammar), the order alternating from case to case, and scored
by BFCL's AST check (edgeagent eval's scoring). Irrelevance categories are left out: a proposal
follows a call, and a call there is already wrong. Latency is the whole first reply's, over the
replies that call (the only ones a proposal adds to).

    python benchmarks/bench_propose_calls.py --limit 100 --rows-out rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeagent.backends import SamplingParams  # noqa: E402
from edgeagent.confidence import SHIPPED_CALL_THRESHOLD  # noqa: E402
from edgeagent.evaluation.runner import Evaluator, bfcl_cases  # noqa: E402
from edgeagent.replies import ADAPTER  # noqa: E402

CATEGORIES = "simple_python,multiple,parallel,parallel_multiple,live_simple"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--categories", default=CATEGORIES)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rows-out", type=Path)
    args = parser.parse_args()
    evaluator = Evaluator()
    evaluator.backend.set_adapters({ADAPTER: 1.0})
    sampling = SamplingParams(call_threshold=SHIPPED_CALL_THRESHOLD)
    rows = []
    start = time.perf_counter()
    out = args.rows_out.open("w") if args.rows_out else None
    for i, case in enumerate(bfcl_cases(args.categories.split(","), args.limit)):
        row: dict = {"id": case.id, "category": case.category}
        for propose in (i % 2 == 0, i % 2 == 1):
            # both from an empty cache: a prompt continued from the cache gets logits a little
            # off the ones of the prompt evaluated whole, enough to flip a close greedy choice
            # ("United States" or "US") between the two runs of one case
            evaluator.backend._llm.n_tokens = 0
            result = evaluator.run_case(case, True, sampling, propose_calls=propose)
            key = "proposed" if propose else "as_ended"
            row[key] = {"ok": result.ok, "calls": result.calls, "latency_s": result.latency_s}
        rows.append(row)
        if out:  # as it goes: a long run can be read before it ends
            out.write(json.dumps(row) + "\n")
            out.flush()
    summary: dict = {}
    for category in args.categories.split(","):
        mine = [r for r in rows if r["category"] == category]
        calling = [r for r in mine if r["as_ended"]["calls"]]
        summary[category] = {
            "cases": len(mine),
            **{
                f"{key}_accuracy": round(sum(r[key]["ok"] for r in mine) / len(mine), 3)
                for key in ("as_ended", "proposed")
            },
            "gained": [r["id"] for r in mine if r["proposed"]["ok"] and not r["as_ended"]["ok"]],
            "lost": [r["id"] for r in mine if r["as_ended"]["ok"] and not r["proposed"]["ok"]],
            "more_calls": sum(
                len(r["proposed"]["calls"]) > len(r["as_ended"]["calls"]) for r in mine
            ),
            **{
                f"{key}_latency_median_s": round(
                    statistics.median(r[key]["latency_s"] for r in calling), 3
                )
                for key in ("as_ended", "proposed")
                if calling
            },
        }
    calling = [r for r in rows if r["as_ended"]["calls"]]
    extra = sorted(r["proposed"]["latency_s"] - r["as_ended"]["latency_s"] for r in calling)
    if out:
        out.close()
    print(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "limit": args.limit,
        "seconds": round(time.perf_counter() - start, 1),
        "categories": summary,
        "calling_replies": len(calling),
        "added_latency_s": {
            "median": round(statistics.median(extra), 3),
            "p90": round(extra[int(0.9 * (len(extra) - 1))], 3),
        } if extra else None,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
