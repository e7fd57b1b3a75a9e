"""Two `edgeagent eval --predictions-out` files of the same cases, case by case: each
category's accuracy in both, the cases gained and lost, and how many cases' calls changed.
Prints one JSON object. Replies are greedy, so a change of code shows as changed calls; where
the two files come from two runs, the cases whose calls did not change are the check that the
runs agree.

    python benchmarks/compare_predictions.py BEFORE.jsonl AFTER.jsonl --plot chart.png \
        --labels "before|after"
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load(path: Path) -> dict[str, dict]:
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {row["id"]: row for row in rows}


def category(case_id: str) -> str:
    """BFCL ids: simple_python_12, live_simple_53-24-0."""
    return case_id.rsplit("_", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--plot", type=Path, help="bar chart PNG, as edgeagent eval --plot")
    parser.add_argument("--labels", default="before|after", help="the two bars' names, |-separated")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    before, after = load(args.before), load(args.after)
    missing = sorted(set(after) - set(before))
    if missing:
        raise SystemExit(f"{args.before} lacks {len(missing)} cases of {args.after}: {missing[:3]}")
    table: dict[str, dict] = defaultdict(
        lambda: {"cases": 0, "before": 0, "after": 0, "gained": [], "lost": [], "changed": 0}
    )
    for case_id, new in after.items():
        old, row = before[case_id], table[category(case_id)]
        row["cases"] += 1
        row["before"] += old["ok"]
        row["after"] += new["ok"]
        row["changed"] += old["calls"] != new["calls"]
        if new["ok"] != old["ok"]:
            row["gained" if new["ok"] else "lost"].append(case_id)
    for row in table.values():
        row["before"] = round(row["before"] / row["cases"], 3)
        row["after"] = round(row["after"] / row["cases"], 3)
    print(json.dumps({"before": str(args.before), "after": str(args.after),
                      "categories": table}, indent=1))  # fmt: skip
    if args.plot:
        from edgeagent.evaluation.plot import plot_comparison

        cases = sum(row["cases"] for row in table.values())
        reports = [
            SimpleNamespace(
                config=label,
                model=args.title,
                categories=[
                    SimpleNamespace(category=c, accuracy=row[side]) for c, row in table.items()
                ],  # fmt: skip
                overall=SimpleNamespace(
                    category="overall",
                    cases=cases,
                    accuracy=sum(row[side] * row["cases"] for row in table.values()) / cases,
                ),
            )
            for side, label in zip(("before", "after"), args.labels.split("|"), strict=True)
        ]
        plot_comparison(reports, args.plot, args.title)


if __name__ == "__main__":
    main()
