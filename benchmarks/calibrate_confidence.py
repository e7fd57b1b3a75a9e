"""Calibrate the agent's confidence (edgeagent.confidence) on held-out cases that are not BFCL:
requests to the tool bank's 40 held-out tools (never trained on; up to 4 offered, a quarter
asking for a tool that is not offered, some off-topic; with --siblings, look-alike tools of one
domain, some asking for the one left out), with the shipped adapter, no call threshold.

For each case the first reply is right when it makes the expected decision (call or not) and
calls the expected tools (arguments are not part of what the score measures). Prints one JSON
object: the reliability table (accuracy per confidence bin), the thresholds on the confidence
(min_confidence) and on P(call) at the first token (the call threshold) that best separate
right calls from wrong ones, and the same-run figures at them; `--plot` writes the reliability
plot.

    python benchmarks/calibrate_confidence.py --n 200 --siblings 0.3 --plot docs/img/confidence.png
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-calibrate-"))

from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.confidence import reply_confidence  # noqa: E402
from edgeagent.evaluation.runner import first_reply  # noqa: E402
from edgeagent.models import DEFAULT_ADAPTER, default_model_path  # noqa: E402
from edgeagent.train.data import parse_example  # noqa: E402
from edgeagent.train.toolbank import bank_tools, synthesize_bank  # noqa: E402
from edgeagent.wireformat import parse_reply  # noqa: E402

BINS = 10


def run(n: int, seed: int, siblings: float, adapter: str = str(DEFAULT_ADAPTER)) -> list[dict]:
    """The first reply to each case, as the agent's first step makes it (the shipped adapter
    on, grammar on, tool_choice auto, greedy, no call threshold): what it called, how sure it
    was (edgeagent.confidence) and P(call) at its first token."""
    backend = LlamaCppBackend(default_model_path(), n_ctx=2048, adapters={"adapter": adapter})
    backend.set_adapters({"adapter": 1.0})
    rows = []
    for raw in synthesize_bank(bank_tools("held-out"), n, seed=seed, siblings=siblings):
        example = parse_example(raw)
        user = next(m.content for m in example.messages if m.role == "user")
        want = next(m for m in example.messages if m.role == "assistant")
        text, stats = first_reply(backend, example.tools, user)
        made = sorted({c.name for c in parse_reply(text, example.tools).calls})
        expected = sorted({c.name for c in want.calls})
        rows.append(
            {
                "request": user,
                "expected": expected,
                "made": made,
                "called": bool(made),
                "right": made == expected,
                "confidence": reply_confidence(stats, text),
                "call_mass": stats.call_mass,
            }
        )
    return rows


def reliability(rows: list[dict]) -> list[dict]:
    table = []
    for b in range(BINS):
        lo, hi = b / BINS, (b + 1) / BINS
        inside = [
            r
            for r in rows
            if lo <= r["confidence"] < hi or (b == BINS - 1 and r["confidence"] == 1)
        ]
        table.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "cases": len(inside),
                "accuracy": round(sum(r["right"] for r in inside) / len(inside), 3)
                if inside
                else None,
                "mean_confidence": round(sum(r["confidence"] for r in inside) / len(inside), 3)
                if inside
                else None,
            }
        )
    return table


def best_threshold(rows: list[dict], key: str = "confidence") -> dict:
    """Over the replies that call: holding back a wrong call is right, a right call wrong.
    The threshold on `key` (the confidence, for min_confidence; P(call) at the first token,
    for the call threshold) that makes the most of them right (the lowest, on a tie)."""
    calls = [r for r in rows if r["called"]]

    def right(t: float) -> int:
        return sum((r[key] >= t) == r["right"] for r in calls)

    best = max((i / 100 for i in range(100)), key=lambda t: (right(t), -t))
    acted = [r for r in calls if r[key] >= best]
    return {
        "threshold": best,
        "decisions_right": round(right(best) / max(len(calls), 1), 3),
        "calls": len(calls),
        "held_back": len(calls) - len(acted),
        "wrong_calls_held_back": sum(not r["right"] for r in calls if r[key] < best),
        "right_calls_held_back": sum(r["right"] for r in calls if r[key] < best),
        "accuracy_of_calls_made": round(sum(r["right"] for r in acted) / max(len(acted), 1), 3),
        "accuracy_of_calls_without_threshold": round(
            sum(r["right"] for r in calls) / max(len(calls), 1), 3
        ),
        "decisions_right_by_threshold": {
            str(t): round(right(t) / max(len(calls), 1), 3) for t in (0.5, 0.7, 0.8, 0.9, 0.95)
        },
    }


def equal_count(rows: list[dict], groups: int = 8) -> list[dict]:
    """Bins of (about) the same number of cases, by confidence: most replies are sure, so fixed
    bins leave the low ones with one or two cases each."""
    ordered = sorted(rows, key=lambda r: r["confidence"])
    size = -(-len(ordered) // groups)
    out = []
    for i in range(0, len(ordered), size):
        part = ordered[i : i + size]
        out.append(
            {
                "from": part[0]["confidence"],
                "to": part[-1]["confidence"],
                "cases": len(part),
                "mean_confidence": round(sum(r["confidence"] for r in part) / len(part), 3),
                "accuracy": round(sum(r["right"] for r in part) / len(part), 3),
            }
        )
    return out


def plot(groups: list[dict], path: str, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    xs = list(range(len(groups)))
    ax.bar(
        xs,
        [g["accuracy"] for g in groups],
        color="#4c72b0",
        alpha=0.85,
        label="first reply right (share of the bin)",
    )
    ax.plot(
        xs,
        [g["mean_confidence"] for g in groups],
        marker="o",
        color="#dd8452",
        label="mean confidence in the bin",
    )
    ax.set_xticks(xs, [f"{g['from']:.3f}-{g['to']:.3f}" for g in groups], rotation=30, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"confidence bins, lowest to highest ({groups[0]['cases']} cases each)")
    ax.set_title(f"Reliability: {n} held-out bank cases (not BFCL)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=160)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--siblings",
        type=float,
        default=0.0,
        help="share of cases offering a whole domain of look-alike tools, a third of them "
        "asking for one that is not offered (edgeagent data synth --siblings)",
    )
    parser.add_argument("--adapter", default=str(DEFAULT_ADAPTER), help="default: the shipped one")
    parser.add_argument("--plot")
    parser.add_argument("--rows-out")
    parser.add_argument("--rows-in", help="Score saved rows again instead of running the model.")
    args = parser.parse_args()
    if args.rows_in:
        with open(args.rows_in) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    else:
        rows = [
            r
            for r in run(args.n, args.seed, args.siblings, args.adapter)
            if r["confidence"] is not None
        ]
    table = reliability(rows)
    # monotone: does accuracy rise with confidence? (Spearman over the bins that have cases)
    filled = [t for t in table if t["cases"]]
    rising = sum(b["accuracy"] >= a["accuracy"] for a, b in zip(filled, filled[1:], strict=False))
    out = {
        "cases": len(rows),
        "seed": args.seed,
        "accuracy": round(sum(r["right"] for r in rows) / len(rows), 3),
        "reliability": table,
        "equal_bins": equal_count(rows),
        "bins_rising": f"{rising} of {max(len(filled) - 1, 0)}",
        "siblings": args.siblings,
        "threshold": best_threshold(rows),
        "call_threshold": best_threshold(rows, "call_mass"),
    }
    if args.rows_out:
        with open(args.rows_out, "w") as fh:
            fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    if args.plot:
        plot(equal_count(rows), args.plot, len(rows))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
