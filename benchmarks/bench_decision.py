"""How well a reply's confidence separates calls to make from calls to hold back, on BFCL.

Runs `edgeagent eval`'s first-reply scoring (BFCL's AST check) for each adapter on the same
cases, records every case's confidence (edgeagent.confidence) and P(call) at its first token,
then scores each category again as if the agent had answered instead of calling below a
threshold: a held-back call is right on an irrelevance case and wrong elsewhere. Prints one
JSON object; `--rows-out` keeps every case, `--rows-in` scores saved rows again.

    python benchmarks/bench_decision.py --adapter edgeagent/data/default-adapter.gguf \
        --adapter build/trial/adapter.gguf --limit 100 --rows-out rows.jsonl
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

from edgeagent.evaluation.runner import Evaluator, bfcl_cases  # noqa: E402
from edgeagent.models import DEFAULT_ADAPTER  # noqa: E402

CATEGORIES = (
    "simple_python,multiple,parallel,parallel_multiple,irrelevance,live_simple,live_irrelevance"
)
THRESHOLDS = [0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98]


def run(adapters: list[Path], categories: list[str], limit: int) -> list[dict]:
    cases = bfcl_cases(categories, limit)
    rows = []
    for i, path in enumerate(adapters):
        evaluator = Evaluator(adapter=path)
        start = time.perf_counter()
        # no call threshold: the sweep below applies each one to the same replies
        report = evaluator.run(cases, name=f"adapter{i or ''}", call_threshold=0.0)
        print(f"{path}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
        for r in report.results:
            rows.append({"adapter": str(path), **dataclasses.asdict(r)})
    return rows


def held_back_ok(row: dict, key: str, threshold: float) -> bool:
    """Whether the case is right when a call below `threshold` is not made."""
    value = row[key]
    if row["attempted_call"] and value is not None and value < threshold:
        return row["category"].endswith("irrelevance")
    return row["ok"]


def sweep(rows: list[dict], key: str) -> dict:
    out: dict = {}
    for t in THRESHOLDS:
        cats: dict[str, list[bool]] = {}
        for r in rows:
            cats.setdefault(r["category"], []).append(held_back_ok(r, key, t))
        out[str(t)] = {c: round(sum(v) / len(v), 3) for c, v in cats.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--adapter", type=Path, action="append")
    parser.add_argument("--bfcl", default=CATEGORIES)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rows-out")
    parser.add_argument("--rows-in")
    args = parser.parse_args()
    if args.rows_in:
        with open(args.rows_in) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    else:
        paths = args.adapter or [DEFAULT_ADAPTER]
        rows = run(paths, args.bfcl.split(","), args.limit)
    if args.rows_out:
        with open(args.rows_out, "w") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
    report = {}
    for adapter in dict.fromkeys(r["adapter"] for r in rows):
        mine = [r for r in rows if r["adapter"] == adapter]
        report[adapter] = {
            "by_confidence": sweep(mine, "confidence"),
            "by_call_mass": sweep(mine, "call_mass"),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
