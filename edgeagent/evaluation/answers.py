"""The answers check: after its tools ran, does the agent's answer say what happened?

Each case (edgeagent/data/eval/answers.jsonl) is one request and its tools, run through the
whole agent loop as a user would meet it: the demo tools with their real result shapes (or
their real functions: `calculate` and `convert_units` are deterministic, and their errors are
the real ones), other tools with scripted results, empty results, errors and calls the user
declines, later turns of a conversation (`before`: the requests sent first, whose answers
must not stand in for this one's) and errors that suggest a value to try instead (`retry`: the
result comes only to a call with that value). A case passes when

- the agent called a tool (an answer without a call has no result to state),
- the answer states every expected value (each group: any of its spellings),
- it is prose: no code block, no call syntax, no code lines, no JSON,
- it ended by itself within ANSWER_TOKENS tokens,
- it does not repeat itself.

Recovery is recorded too: after an error, did the agent call again with other arguments?
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from edgeagent.evaluation.beyond import contains_any, shipped
from edgeagent.replies import ADAPTER
from edgeagent.tools import Tool
from edgeagent.wireformat import loop_start

#: an answer longer than this (or cut off by the token limit) has not ended by itself
ANSWER_TOKENS = 80

_CODE_LINE = re.compile(r"^\s*(def |class |import |from \w+ import |print\(|return |>>> )", re.M)
_CALL_SYNTAX = re.compile(r"\b[a-z_][a-z0-9_]*\(\s*([a-z_]+\s*=|\"|'|\))")


@dataclass
class AnswerResult:
    id: str
    kind: str  # value, empty, error, declined, several, later, retry
    called: bool
    retried: bool  # after an error, another call with other arguments
    answer: str
    tokens: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def looks_like_code(text: str) -> bool:
    """A code block, a line of code, a function call written out, or a JSON object."""
    stripped = text.strip()
    return (
        "```" in text
        or "<tool_call>" in text
        or bool(_CODE_LINE.search(text))
        or bool(_CALL_SYNTAX.search(text))
        or stripped.startswith(("{", "["))
    )


def repeats(text: str) -> bool:
    """Four words three times, or a sentence twice: a loop, not an answer (the runtime cuts
    such loops as they happen: edgeagent.wireformat.loop_start)."""
    return loop_start(text) is not None


def answer_problems(answer: str, expect: list[list[str]], tokens: int) -> list[str]:
    problems = []
    if not answer.strip():
        return ["empty answer"]
    for group in expect:
        if not contains_any(answer, group):
            problems.append(f"does not state {group[0]!r}")
    if looks_like_code(answer):
        problems.append("code or call syntax, not prose")
    if tokens > ANSWER_TOKENS:
        problems.append(f"did not end within {ANSWER_TOKENS} tokens ({tokens})")
    if repeats(answer):
        problems.append("repeats itself")
    return problems


def case_tools(case: dict[str, Any]) -> list[Tool]:
    """The case's tools: a demo tool by name (its real function where the case's `real` is true
    or lists the name), or a schema; each answers with the case's scripted result or error
    (`retry` cases: the error, unless an argument is the case's `fix`, the value the error
    suggests)."""
    from edgeagent.demo_tools import DEMO_TOOLS

    demo = {t.name: t for t in DEMO_TOOLS}
    side_effects = case.get("allow") or case.get("declined")

    def scripted(**arguments: Any) -> Any:
        fix = str(case.get("fix", "")).lower()
        fixed = bool(fix) and any(str(v).lower() == fix for v in arguments.values())
        if "error" in case and not fixed:
            raise ValueError(case["error"])
        by_value = {k.lower(): v for k, v in case.get("results", {}).items()}
        for value in arguments.values():
            if str(value).lower() in by_value:
                return by_value[str(value).lower()]
        result = case.get("result")
        if isinstance(result, str):  # "Timer '{label}' set for {minutes} minutes."
            return result.format_map(defaultdict(str, arguments))
        return result

    tools = []
    for spec in case["tools"]:
        if isinstance(spec, str):
            real = demo[spec]
            if case.get("real") is True or spec in case.get("real", ()):
                tools.append(real)
                continue
            spec = {**real.spec(), "effects": real.effects}
        effects = spec.get("effects", "write" if side_effects else "read")
        tools.append(Tool.from_schema(spec["name"], spec["description"], spec["parameters"],
                                      fn=scripted, effects=effects))  # fmt: skip
    return tools


def run_case(agent: Any, case: dict[str, Any]) -> AnswerResult:
    """The case's earlier turns (`before`) and then its question, in one conversation; the
    question's answer is the one checked."""
    session = agent.session()
    for earlier in case.get("before", []):
        session.send(earlier)
    run = session.send(case["question"])
    calls = run.tool_calls
    failed_then_other = any(
        not a.ok and any(b.arguments != a.arguments for b in calls[i + 1 :])
        for i, a in enumerate(calls)
    )
    tokens = len(agent.backend.tokenize(run.answer))
    problems = answer_problems(run.answer, case["expect"], tokens)
    if not calls:
        problems.insert(0, "no tool called")
    return AnswerResult(case["id"], case["kind"], bool(calls), failed_then_other, run.answer,
                        tokens, problems)  # fmt: skip


def check_answers(
    evaluator: Any,
    adapter: bool,
    grammar: bool,
    cases: list[dict[str, Any]] | None = None,
    call_threshold: float | None = None,
) -> dict[str, Any]:
    """Every case through the agent as `edgeagent run` builds it: the share that passes, per
    kind, the problems, and the recoveries after errors. `call_threshold` None: the agent's own
    (the shipped adapter's calibrated one with it)."""
    from edgeagent.agent import Agent

    backend = evaluator.backend
    use_adapter = adapter and evaluator.adapter is not None
    results = []
    for case in cases if cases is not None else shipped("answers.jsonl"):
        tools = case_tools(case)
        agent = Agent(
            tools,
            backend=backend,
            adapter=evaluator.adapter if use_adapter else None,
            answer_adapter=evaluator.answer_adapter if use_adapter else None,
            recovery_adapter=evaluator.recovery_adapter if use_adapter else None,
            constrained=grammar,
            max_steps=4,  # room to retry after an error
            max_tokens=ANSWER_TOKENS + 48,  # a loop shows as a long answer, not a cut one
            base_answers=evaluator.shipped_adapter,
            allow="all" if case.get("allow") else (),
            confirm=(lambda call, tool: False) if case.get("declined") else None,
            call_threshold=call_threshold,
        )
        if evaluator.adapter is not None:
            backend.set_adapters({ADAPTER: 1.0} if use_adapter else {})
        results.append(run_case(agent, case))
    return summarize(results)


def summarize(results: list[AnswerResult]) -> dict[str, Any]:
    n = len(results)
    kinds: dict[str, list[AnswerResult]] = defaultdict(list)
    for r in results:
        kinds[r.kind].append(r)
    problems = Counter(p.split(" (")[0].split(" '")[0] for r in results for p in r.problems)
    return {
        "cases": n,
        "passed": round(sum(r.ok for r in results) / n, 3) if n else 0.0,
        "called": round(sum(r.called for r in results) / n, 3) if n else 0.0,
        "kinds": {k: round(sum(r.ok for r in rs) / len(rs), 3) for k, rs in sorted(kinds.items())},
        "problems": dict(problems.most_common()),
        "retried_after_error": sum(r.retried for r in results),
        "results": [{**asdict(r), "ok": r.ok} for r in results],
    }
