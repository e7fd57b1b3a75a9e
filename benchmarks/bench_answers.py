"""The answers check (edgeagent/evaluation/answers.py) with and without the answer adapter, in
one run. Prints JSON.

Configurations: the default (the shipped adapter decides and calls, the recovery adapter after
a tool error; after tool results the answer adapter writes the answer from `answer_view`'s
prompt), the same without the recovery adapter, the same with the base model answering instead
(the configuration before the answer adapter), and the bare model (no
adapter, grammar on). With `--adapter FILE`, a candidate call adapter too, used as the shipped
one is (the shipped answer adapter after results, the base model's other answers, the shipped
call threshold), so that a trial is checked beside the shipped adapter in the same run. With
`--answer-adapter` and/or `--recovery-adapter`, candidates for those beside the shipped call
adapter (the shipped one where a file is not given), as `candidate_companions`.

    python benchmarks/bench_answers.py [--adapter FILE] [--answer-adapter FILE]
        [--recovery-adapter FILE] [--rows OUT.jsonl] [--no-bare]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent.confidence import SHIPPED_CALL_THRESHOLD  # noqa: E402
from edgeagent.evaluation.answers import check_answers  # noqa: E402
from edgeagent.evaluation.runner import Evaluator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", type=Path, help="a candidate call adapter, beside the shipped")
    parser.add_argument("--answer-adapter", type=Path, help="a candidate answer adapter")
    parser.add_argument("--recovery-adapter", type=Path, help="a candidate recovery adapter")
    parser.add_argument("--rows", type=Path, help="every answer of every configuration (JSONL)")
    parser.add_argument("--no-bare", action="store_true", help="leave out the bare model (slow)")
    args = parser.parse_args()
    evaluator = Evaluator()
    answers = evaluator.answer_adapter
    runs = {}
    runs["default"] = check_answers(evaluator, adapter=True, grammar=True)
    if args.answer_adapter or args.recovery_adapter:
        companions = Evaluator(answer_adapter=args.answer_adapter or "default",
                               recovery_adapter=args.recovery_adapter or "default")  # fmt: skip
        runs["candidate_companions"] = check_answers(companions, adapter=True, grammar=True)
    if args.adapter:
        candidate = Evaluator(adapter=args.adapter, answer_adapter=None)
        candidate.shipped_adapter, candidate.answer_adapter = True, answers
        runs["candidate"] = check_answers(
            candidate, adapter=True, grammar=True, call_threshold=SHIPPED_CALL_THRESHOLD
        )
    recovery, evaluator.recovery_adapter = evaluator.recovery_adapter, None
    runs["no_recovery"] = check_answers(evaluator, adapter=True, grammar=True)
    evaluator.answer_adapter = None  # the base model answers after results, as before
    runs["base_model_answers"] = check_answers(evaluator, adapter=True, grammar=True)
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
        "candidate_adapter": str(args.adapter) if args.adapter else None,
        "answer_adapter": str(answers),
        "recovery_adapter": str(recovery),
        "candidate_answer_adapter": str(args.answer_adapter) if args.answer_adapter else None,
        "candidate_recovery_adapter": str(args.recovery_adapter) if args.recovery_adapter else None,
        **{name: {k: v for k, v in run.items() if k != "results"} for name, run in runs.items()},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
