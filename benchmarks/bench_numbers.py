"""Large numbers as people write them ("$1,200", "$45k", "3,600 seconds"), on unseen tools.

Requests over the tool bank's held-out tools (`edgeagent data synth --bank held-out --numbers
1`: each one names a number of 1000 or more the way people write it), each asked twice: as
written, and with the number in plain digits (the control: what the model does when the format
is not in the way). A case is right when the first reply (grammar on, greedy, tool_choice auto,
as `edgeagent run` answers) calls the expected tool with exactly the expected arguments. Every
adapter runs on the same cases. Prints one JSON object.

    python benchmarks/bench_numbers.py --adapter edgeagent/data/default-adapter.gguf \
        --adapter build/numbers/adapter.gguf --n 60
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.evaluation.runner import first_reply  # noqa: E402
from edgeagent.models import DEFAULT_ADAPTER, default_model_path  # noqa: E402
from edgeagent.tools import Tool  # noqa: E402
from edgeagent.train.toolbank import bank_tools, synthesize_bank  # noqa: E402
from edgeagent.wireformat import parse_reply  # noqa: E402

# a number as people write it: "1,200", "2,450.5", "$3.2k" (and "45k", which older data wrote)
SAID = re.compile(r"\$?\d{1,3}(?:,\d{3})+(?:\.\d+)?|\$?\d+(?:\.\d+)?k\b|\$\d+(?:\.\d+)?")


def cases(n: int, seed: int) -> list[dict]:
    """(tools offered, the request as written, the request in plain digits, expected call)."""
    out = []
    for example in synthesize_bank(bank_tools("held-out"), n, seed, numbers=1.0):
        user, reply = example["messages"][0], example["messages"][1]
        calls = reply.get("tool_calls") or []
        said = SAID.search(user["content"])
        if len(calls) != 1 or not said:  # a tool without a large number: nothing to test
            continue
        call = calls[0]["function"]
        number = next(v for v in call["arguments"].values() if str(v) in _digits(said[0]))
        out.append({
            "tools": example["tools"],
            "said": user["content"],
            "digits": user["content"].replace(said[0], json.dumps(number), 1),
            "name": call["name"],
            "arguments": call["arguments"],
        })  # fmt: skip
    return out


def _digits(said: str) -> str:
    text = said.lstrip("$").replace(",", "")
    if text.endswith("k"):
        value = float(text[:-1]) * 1000
        return json.dumps(int(value) if value.is_integer() else value)
    return text


def run(adapter: Path | None, items: list[dict]) -> dict:
    backend = LlamaCppBackend(
        default_model_path(), n_ctx=4096, adapters={"a": adapter} if adapter else None
    )
    scores: dict[str, list[bool]] = {"said": [], "digits": []}
    rows = []
    start = time.perf_counter()
    for item in items:
        tools = [Tool.from_schema(t["function"]["name"], t["function"].get("description", ""),
                                  t["function"]["parameters"]) for t in item["tools"]]  # fmt: skip
        row = {"said": item["said"]}
        for form in scores:
            text, _ = first_reply(backend, tools, item[form])
            calls = parse_reply(text, tools).calls
            right = (
                len(calls) == 1
                and calls[0].name == item["name"]
                and calls[0].arguments == item["arguments"]
            )
            scores[form].append(right)
            row[form] = [{"name": c.name, "arguments": c.arguments} for c in calls]
        rows.append(row)
    return {
        "adapter": str(adapter),
        "cases": len(items),
        "right_as_written": round(sum(scores["said"]) / len(items), 3),
        "right_in_digits": round(sum(scores["digits"]) / len(items), 3),
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, action="append")
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows-out", type=Path)
    args = parser.parse_args()
    items = cases(args.n, args.seed)
    results = [run(a, items) for a in args.adapter or [DEFAULT_ADAPTER]]
    if args.rows_out:
        args.rows_out.write_text(
            "".join(
                json.dumps({"adapter": r["adapter"], **row}) + "\n"
                for r in results
                for row in r["rows"]
            )  # fmt: skip
        )
    for r in results:
        print(f"{r['adapter']}: {r['right_as_written']} as written, "
              f"{r['right_in_digits']} in digits", file=sys.stderr)  # fmt: skip
        del r["rows"]
    print(json.dumps({"results": results}, indent=2))


if __name__ == "__main__":
    main()
