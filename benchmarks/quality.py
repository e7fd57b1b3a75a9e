"""Scoring shared by the quality benchmarks: the first reply of the agent to one request (greedy,
grammar on, tool_choice auto), exact-match scoring on synthesized cases and BFCL's AST check
(edgeagent.evaluation.checker, the one `edgeagent eval` uses) on BFCL cases."""

from __future__ import annotations

import json

from edgeagent.bfcl import case_tools
from edgeagent.evaluation.checker import check_case
from edgeagent.evaluation.runner import first_reply as evaluation_first_reply
from edgeagent.wireformat import parse_reply


def first_reply(backend, tools, user):
    """The calls of the first reply (empty list: an answer), as the agent's first step makes
    it with tool_choice auto."""
    text, _ = evaluation_first_reply(backend, tools, user, max_tokens=160)
    return [(c.name, c.arguments) for c in parse_reply(text, tools).calls]


def same_calls(got, want) -> bool:
    key = lambda calls: sorted(json.dumps([n, a], sort_keys=True) for n, a in calls)  # noqa: E731
    return key(got) == key(want)


def score_examples(backend, examples) -> dict:
    """Synthesized cases: exact match of the first reply's calls (or of "no call")."""
    rows = []
    for ex in examples:
        want = [(c.name, c.arguments) for c in ex.messages[1].calls]
        got = first_reply(backend, ex.tools, ex.messages[0].content)
        rows.append(
            (bool(want), same_calls(got, want), {n for n, _ in got} == {n for n, _ in want})
        )
    calls = [r for r in rows if r[0]]
    none = [r for r in rows if not r[0]]
    return {
        "cases": len(rows),
        "exact": round(sum(r[1] for r in rows) / len(rows), 3),
        "exact_on_call_cases": round(sum(r[1] for r in calls) / max(len(calls), 1), 3),
        "right_tools_on_call_cases": round(sum(r[2] for r in calls) / max(len(calls), 1), 3),
        "no_call_when_none_fits": round(sum(r[1] for r in none) / max(len(none), 1), 3),
    }


def score_bfcl(backend, bfcl) -> dict:
    """BFCL categories: BFCL's AST check (edgeagent eval's); irrelevance: no call at all."""
    out = {}
    for category, cases in bfcl.items():
        hits = 0
        for case in cases:
            got = first_reply(backend, case_tools(case), case.messages[-1]["content"])
            expected = None if category.endswith("irrelevance") else case.answer
            hits += check_case(case.functions, got, expected).ok
        out[f"bfcl_{category}"] = {"cases": len(cases), "accuracy": round(hits / len(cases), 3)}
    return out


def score(backend, held_out, bfcl) -> dict:
    return {"held_out": score_examples(backend, held_out), **score_bfcl(backend, bfcl)}
