"""What steering away from a copied call (SamplingParams.repeated_call_margin) does on BFCL.

The shipped configuration (`edgeagent eval`'s first-reply scoring, BFCL's AST check, the call
threshold as shipped) is run on every case with the steering off, keeping each reply's raw
text. Only a reply that began a second call can change with the steering on (it acts only while
a call is being written that copies an earlier one), so those cases are run again at each
margin and every other case keeps its result: each margin's per-category accuracy is exact for
greedy decoding, from one run. Prints one JSON object.

    python benchmarks/bench_distinct_calls.py --limit 100 --margins 1,2,3,4,6,8,1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent.evaluation.runner import Evaluator, bfcl_cases  # noqa: E402
from edgeagent.wireformat import CALL_OPEN  # noqa: E402

CATEGORIES = (
    "simple_python,multiple,parallel,parallel_multiple,irrelevance,live_simple,live_irrelevance"
)


def capture(backend) -> list[str]:
    """Record the raw text of every reply the backend generates (before the agent cuts a
    repeated call)."""
    texts: list[str] = []
    generate = backend.generate

    def recording(*args, **kwargs):
        texts.append("")
        for piece in generate(*args, **kwargs):
            texts[-1] += piece
            yield piece

    backend.generate = recording
    return texts


def began_second_call(text: str) -> bool:
    return text.startswith(CALL_OPEN) and text.count('{"name"') >= 2


def accuracy(results) -> dict[str, float]:
    cats: dict[str, list[bool]] = {}
    for r in results:
        cats.setdefault(r.category, []).append(r.ok)
    return {c: round(sum(v) / len(v), 3) for c, v in cats.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bfcl", default=CATEGORIES)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--margins", default="1,2,3,4,6,8,1000")
    parser.add_argument("--adapter", default="default", help="GGUF LoRA adapter (default: shipped)")
    args = parser.parse_args()
    cases = bfcl_cases(args.bfcl.split(","), args.limit)
    evaluator = Evaluator(adapter=args.adapter)
    texts = capture(evaluator.backend)
    start = time.perf_counter()
    base = evaluator.run(cases, name="off", repeated_call_margin=0.0).results
    print(f"steering off: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    assert len(texts) == len(cases)
    again = [i for i, t in enumerate(texts) if began_second_call(t)]
    out: dict = {
        "adapter": str(evaluator.adapter),
        "cases": len(cases),
        "began_a_second_call": len(again),
        "margins": {"0": {"accuracy": accuracy(base)}},
    }
    for margin in [float(m) for m in args.margins.split(",")]:
        report = evaluator.run([cases[i] for i in again], repeated_call_margin=margin)
        results = list(base)
        changed = []
        for i, r in zip(again, report.results, strict=True):
            if r.ok != base[i].ok or r.calls != base[i].calls:
                changed.append({"id": r.id, "ok": [base[i].ok, r.ok], "calls": r.calls})
            results[i] = r
        out["margins"][f"{margin:g}"] = {
            "accuracy": accuracy(results),
            "fixed": sum(c["ok"] == [False, True] for c in changed),
            "broken": sum(c["ok"] == [True, False] for c in changed),
            "changed": changed,
        }
        print(f"margin {margin:g}: {accuracy(results)}", file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
