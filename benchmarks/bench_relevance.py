"""Tool relevance as a gate on calls: would a lexical match between the request and the offered
tools' text tell the calls nobody asked for from the right ones?

No model runs here: the score is computed on the text of cases whose first replies are already
recorded, the held-out calibration set (`calibrate_confidence.py --n 200 --siblings 0.3`, not
BFCL; its cases synthesized again from their seed) and the BFCL rows of `bench_decision.py`.
The relevance of a request is the largest share of its content words (stop words out, a light
suffix stemmer) found in one offered tool's name, description and parameter descriptions; a
call is held back (answered instead, as the call threshold does) when the relevance is below a
cut. Prints one JSON object: per cut, the calibration set's held-back calls (wrong / right) and
the BFCL categories scored as if those calls had been answers (with the shipped call threshold).

    python benchmarks/bench_relevance.py --rows benchmarks/data/bench_decision_rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from edgeagent import bfcl
from edgeagent.confidence import SHIPPED_CALL_THRESHOLD
from edgeagent.models import DEFAULT_ADAPTER
from edgeagent.pruning import tool_document
from edgeagent.tools import Tool
from edgeagent.train.data import parse_example
from edgeagent.train.toolbank import bank_tools, synthesize_bank

DATA = Path(__file__).parent / "data"
CUTS = (0.01, 0.1, 0.2, 0.34)
# English stop words and request fillers: they match every tool's text
_STOP = (
    "a an the and or but if of to in on at by for with from into as is are was were be been do "
    "does did have has had i me my we us our you your he she it its they them their this that "
    "these those what which who when where why how please can could would should will may might "
    "must tell give show get let make find set up out about some any all each every more most "
    "other another there here then than too very just also so not no yes am want need like know "
    "much many"
)
STOP = frozenset(_STOP.split())


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _words(text: str) -> set[str]:
    found = re.findall(r"[a-z]+", text.lower().replace("_", " "))
    return {_stem(w) for w in found if w not in STOP and len(w) > 2}


def relevance(request: str, tools: list[Tool]) -> float:
    """The largest share of the request's content words that one offered tool's text has."""
    asked = _words(request)
    if not asked:
        return 1.0  # nothing to go on: no gate
    return max(len(asked & _words(tool_document(t))) / len(asked) for t in tools)


def _read(path: Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def calibration_rows() -> list[dict]:
    rows = _read(DATA / "confidence_calibration_rows.jsonl")
    # the calibration run's cases (2026-11-30, when the same-tool mix was the default)
    raws = synthesize_bank(bank_tools("held-out"), 200, seed=11, siblings=0.3, same_tool=True)
    for row, raw in zip(rows, raws, strict=True):
        example = parse_example(raw)
        user = next(m.content for m in example.messages if m.role == "user")
        assert user == row["request"], "the calibration cases no longer synthesize the same"
        row["relevance"] = relevance(user, example.tools)
    return rows


def bfcl_rows(path: Path) -> list[dict]:
    rows = _read(path)
    rows = [r for r in rows if Path(r["adapter"]).name == DEFAULT_ADAPTER.name]
    cases: dict[str, dict[str, bfcl.Case]] = {}
    for row in rows:
        category = row["category"]
        if category not in cases:
            cases[category] = {c.id: c for c in bfcl.load_cases(category)}
        case = cases[category][row["id"]]
        user = " ".join(m["content"] for m in case.messages if m["role"] == "user")
        row["relevance"] = relevance(user, bfcl.case_tools(case))
    return rows


def bfcl_scores(rows: list[dict], cut: float) -> dict[str, float]:
    out = {}
    for category in sorted({r["category"] for r in rows}):
        inside = [r for r in rows if r["category"] == category]
        right = 0
        for r in inside:
            calls = (
                r["attempted_call"]
                and r["call_mass"] >= SHIPPED_CALL_THRESHOLD
                and r["relevance"] >= cut
            )
            if "irrelevance" in category:
                right += not calls
            else:  # a call held back is wrong; an answer stays what it was
                right += r["ok"] and (calls or not r["attempted_call"])
        out[category] = round(right / len(inside), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=Path, default=DATA / "bench_decision_rows.jsonl")
    args = parser.parse_args()
    calibration = [r for r in calibration_rows() if r["called"]]
    rows = bfcl_rows(args.rows)
    out: dict = {"calibration_calls": len(calibration), "bfcl": {"none": bfcl_scores(rows, 0)}}
    out["calibration"] = {}
    for cut in CUTS:
        held = [r for r in calibration if r["relevance"] < cut]
        out["calibration"][str(cut)] = {
            "held_back": len(held),
            "wrong_held_back": sum(not r["right"] for r in held),
            "right_held_back": sum(r["right"] for r in held),
            "right_held_back_requests": [r["request"] for r in held if r["right"]][:5],
        }
        out["bfcl"][str(cut)] = bfcl_scores(rows, cut)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
