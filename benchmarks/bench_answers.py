"""The answers check (edgeagent/evaluation/answers.py) beside the previous answer prompt, in one
run. Prints JSON.

Configurations: the default (the adapter decides and calls; the base model answers after tool
results from `answer_view`'s prompt), the same with the answer prompt it replaced (the tool
results as `tool` turns, as the adapter sees them), and the bare model (no adapter, grammar on).

    python benchmarks/bench_answers.py [--adapter FILE] [--rows OUT.jsonl] [--no-bare]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent import replies  # noqa: E402
from edgeagent.evaluation.answers import check_answers  # noqa: E402
from edgeagent.evaluation.runner import Evaluator  # noqa: E402


@contextlib.contextmanager
def previous_answer_prompt():
    """The answer prompt before answer_view: the conversation as it is."""
    kept = replies.base_answer
    replies.base_answer = lambda session, r: r.only_answer()
    try:
        yield
    finally:
        replies.base_answer = kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", type=Path, help="default: the shipped adapter")
    parser.add_argument("--rows", type=Path, help="every answer of every configuration (JSONL)")
    parser.add_argument("--no-bare", action="store_true", help="leave out the bare model (slow)")
    args = parser.parse_args()
    evaluator = Evaluator(adapter=args.adapter) if args.adapter else Evaluator()
    runs = {}
    runs["default"] = check_answers(evaluator, adapter=True, grammar=True)
    with previous_answer_prompt():
        runs["default_previous_prompt"] = check_answers(evaluator, adapter=True, grammar=True)
    if not args.no_bare:
        runs["bare_grammar"] = check_answers(evaluator, adapter=False, grammar=True)
    if args.rows:
        with args.rows.open("w", encoding="utf-8") as fh:
            for name, run in runs.items():
                for row in run["results"]:
                    fh.write(json.dumps({"config": name, **row}, ensure_ascii=False) + "\n")
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "adapter": str(evaluator.adapter),
        **{name: {k: v for k, v in run.items() if k != "results"} for name, run in runs.items()},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
