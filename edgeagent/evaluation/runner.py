"""Run the agent over BFCL-format cases and score its first reply with BFCL's AST check.

A configuration names the model (or bundle), whether the adapter is on and whether the grammar
constrains the reply; configurations that share a model share one loaded backend, so
`--compare` costs one load. Each case gets the agent's first reply to its question with the
case's functions offered (tool_choice auto, greedy), as BFCL scores it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.bfcl import function_tools
from edgeagent.confidence import PROBE_TOKENS, SHIPPED_CALL_THRESHOLD, reply_confidence
from edgeagent.errors import EdgeAgentError
from edgeagent.evaluation.checker import Call, Expected, check_case
from edgeagent.replies import ADAPTER, loaded_adapters
from edgeagent.tools import Tool

#: named configurations for --compare: (adapter on, grammar on, one more call asked for)
PRESETS: dict[str, tuple[bool, bool, bool]] = {
    "default": (True, True, True),
    "no-propose-calls": (True, True, False),  # the default before 2026-12-03
    "no-adapter": (False, True, True),
    "no-grammar": (True, False, True),
    "bare": (False, False, True),
}
MAX_REPLY_TOKENS = 192


@dataclass(frozen=True)
class EvalCase:
    id: str
    category: str
    question: str  # the user's request (BFCL's last user message of the first turn)
    functions: list[dict[str, Any]]  # BFCL function descriptions, in BFCL's schema dialect
    expected: list[Expected] | None  # None or []: irrelevance, no call is right


@dataclass
class CaseResult:
    id: str
    category: str
    calls: list[dict[str, Any]]
    ok: bool
    error_type: str
    error: str
    attempted_call: bool  # the reply opened a call
    valid_calls: bool  # every call parsed and validated against its function's schema
    latency_s: float
    completion_tokens: int
    decode_s: float
    #: edgeagent.confidence of the reply, and P(call) at its first token (None without grammar)
    confidence: float | None = None
    call_mass: float | None = None


@dataclass
class CategoryScore:
    category: str
    cases: int
    correct: int
    accuracy: float
    valid_call_rate: float  # of the replies that called
    mean_latency_s: float
    tokens_per_s: float


@dataclass
class EvalReport:
    config: str
    model: str
    adapter: bool
    grammar: bool
    categories: list[CategoryScore]
    overall: CategoryScore
    skipped: list[str] = field(default_factory=list)  # malformed input lines, with the reason
    coherence: dict[str, Any] | None = None  # evaluation.beyond.coherence, when asked
    answers_check: dict[str, Any] | None = None  # evaluation.answers.check_answers, when asked
    results: list[CaseResult] = field(default_factory=list)

    def to_dict(self, with_results: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_results:
            out.pop("results")
        return out


class Evaluator:
    """One model loaded once; `run` scores cases under one configuration."""

    def __init__(
        self,
        model: str | Path | None = None,
        adapter: str | Path | None = "default",
        bundle: str | Path | None = None,
        n_ctx: int = 4096,
        answer_adapter: str | Path | None = "default",
        recovery_adapter: str | Path | None = "default",
    ) -> None:
        from edgeagent.models import (
            DEFAULT,
            default_model_path,
            is_default_adapter,
            resolve_adapter,
            resolve_companions,
        )

        if bundle:
            from edgeagent.manifest import inside, read_manifest

            manifest = read_manifest(bundle)
            model = inside(Path(bundle), manifest.model)
            if adapter == DEFAULT:
                adapter = inside(Path(bundle), manifest.adapter) if manifest.adapter else None
        self.model = str(model or default_model_path())
        self.adapter = resolve_adapter(adapter, model)
        # the shipped general adapter decides calls and leaves answers to the base model
        self.shipped_adapter = self.adapter is not None and is_default_adapter(self.adapter)
        # and the shipped answer adapter states tool results beside it (None: the base model),
        # the shipped recovery adapter takes the step after a tool error
        self.answer_adapter, self.recovery_adapter = resolve_companions(
            answer_adapter, recovery_adapter, self.adapter, self.shipped_adapter
        )
        self.n_ctx = n_ctx
        self._backend: Any = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from edgeagent.backends import open_backend
            from edgeagent.models import is_onnx_folder

            if self.adapter and is_onnx_folder(self.model):
                raise EdgeAgentError("ONNX models run merged: evaluate with --no-adapter")
            # as an agent opens it: the adapter loaded under the name the reply strategies use
            adapters = loaded_adapters(self.adapter, self.answer_adapter, self.recovery_adapter)
            self._backend = open_backend(self.model, n_ctx=self.n_ctx, adapters=adapters)
        return self._backend

    def run(
        self,
        cases: Iterable[EvalCase],
        *,
        name: str = "default",
        adapter: bool = True,
        grammar: bool = True,
        progress: Callable[[int, CaseResult], None] = lambda i, r: None,
        call_threshold: float | None = None,
        repeated_call_margin: float | None = None,
        propose_calls: bool = True,
    ) -> EvalReport:
        """`call_threshold` None: the configuration's own (the shipped adapter's calibrated
        one with it, 0 otherwise); `repeated_call_margin` None: SamplingParams' default;
        `propose_calls` as Agent's."""
        adapter = adapter and self.adapter is not None
        if self.adapter is not None:
            self.backend.set_adapters({ADAPTER: 1.0} if adapter else {})
        # the shipped adapter calls only above its calibrated P(call), as the agent does
        shipped = adapter and self.shipped_adapter and grammar
        threshold = (
            call_threshold
            if call_threshold is not None
            else (SHIPPED_CALL_THRESHOLD if shipped else 0.0)
        )
        sampling = SamplingParams(call_threshold=threshold)
        if repeated_call_margin is not None:
            sampling = replace(sampling, repeated_call_margin=repeated_call_margin)
        results = []
        for i, case in enumerate(cases):
            try:
                result = self.run_case(case, grammar, sampling, propose_calls)
            except EdgeAgentError as exc:
                # a case the agent cannot run (a schema no grammar states, a question longer
                # than the context) is scored as a failure with its reason; the run goes on
                reason = str(exc).splitlines()[0]
                result = CaseResult(case.id, case.category, [], False, "not_run", reason,
                                    False, False, 0.0, 0, 0.0)  # fmt: skip
            results.append(result)
            progress(i + 1, result)
        return report(name, self.model, adapter, grammar, results)

    def run_case(
        self,
        case: EvalCase,
        grammar: bool = True,
        sampling: SamplingParams | None = None,
        propose_calls: bool = True,
    ) -> CaseResult:
        from edgeagent.wireformat import CALL_OPEN, parse_reply

        tools = function_tools(case.functions)
        start = time.perf_counter()
        text, stats = first_reply(
            self.backend, tools, case.question, grammar, sampling=sampling,
            propose_calls=propose_calls,
        )  # fmt: skip
        latency = time.perf_counter() - start
        reply = parse_reply(text, tools)
        calls: list[Call] = [(c.name, c.arguments) for c in reply.calls]
        attempted = CALL_OPEN in text
        valid = attempted and not reply.problems and all(_validates(tools, c) for c in calls)
        check = check_case(case.functions, calls, case.expected)
        return CaseResult(
            id=case.id,
            category=case.category,
            calls=[{"name": n, "arguments": a} for n, a in calls],
            ok=check.ok,
            error_type=check.error_type,
            error=check.error,
            attempted_call=attempted,
            valid_calls=valid,
            latency_s=round(latency, 3),
            completion_tokens=stats.completion_tokens,
            decode_s=round(stats.decode_s, 3),
            confidence=reply_confidence(stats, text),
            call_mass=None if stats.call_mass is None else round(stats.call_mass, 4),
        )


def first_reply(
    backend: Any, tools: list[Tool], question: str, grammar: bool = True,
    max_tokens: int = MAX_REPLY_TOKENS, sampling: SamplingParams | None = None,
    propose_calls: bool = True,
) -> tuple[str, GenerationStats]:  # fmt: skip
    """The agent's first reply to `question` with `tools` offered (tool_choice auto, greedy),
    stopped as the agent stops it (a repeated call), its later calls kept and proposed as the
    agent does (edgeagent.replies.asked_calls); its text and generation figures."""
    from edgeagent.agent import Agent
    from edgeagent.replies import Request, asked_calls
    from edgeagent.wireformat import CallStream, Message

    agent = Agent(tools, backend=backend, constrained=grammar, propose_calls=propose_calls)
    prompt = backend.tokenize(agent.render([Message("user", question)]))
    stats, stream = GenerationStats(probe_tokens=PROBE_TOKENS if grammar else 0), CallStream()
    sampling = sampling or SamplingParams()
    pieces = backend.generate(
        prompt,
        grammar=agent.grammar(allow_answer=True, allow_calls=True) if grammar else None,
        sampling=sampling,
        max_tokens=max_tokens,
        stats=stats,
    )
    if grammar:
        r = Request(prompt, tools, True, True, max_tokens, stats)
        pieces = asked_calls(agent, r, question, pieces, sampling)
    for piece in pieces:
        if not stream.feed(piece):
            break
    pieces.close()
    return stream.text, stats


def _validates(tools: list[Tool], call: Call) -> bool:
    tool = next((t for t in tools if t.name == call[0]), None)
    if tool is None:
        return False
    try:
        tool.validate(call[1])
    except Exception:  # pydantic or jsonschema: either way the call is not valid
        return False
    return True


def score(category: str, results: list[CaseResult]) -> CategoryScore:
    n = len(results)
    called = [r for r in results if r.attempted_call]
    tokens = sum(r.completion_tokens for r in results)
    decode = sum(r.decode_s for r in results)
    return CategoryScore(
        category=category,
        cases=n,
        correct=sum(r.ok for r in results),
        accuracy=round(sum(r.ok for r in results) / n, 3) if n else 0.0,
        valid_call_rate=round(sum(r.valid_calls for r in called) / len(called), 3)
        if called
        else 1.0,
        mean_latency_s=round(sum(r.latency_s for r in results) / n, 3) if n else 0.0,
        tokens_per_s=round(tokens / decode, 1) if decode else 0.0,
    )


def report(
    name: str, model: str, adapter: bool, grammar: bool, results: list[CaseResult]
) -> EvalReport:
    categories = list(dict.fromkeys(r.category for r in results))
    return EvalReport(
        config=name,
        model=model,
        adapter=adapter,
        grammar=grammar,
        categories=[score(c, [r for r in results if r.category == c]) for c in categories],
        overall=score("overall", results),
        results=results,
    )


# ---------------------------------------------------------------------------- case sources


def bfcl_cases(categories: Iterable[str], limit: int | None = None) -> list[EvalCase]:
    """Cases from the bfcl-eval wheel's data (edgeagent.bfcl fetches the wheel alone)."""
    from edgeagent.bfcl import load_cases

    out = []
    for category in categories:
        for c in load_cases(category, limit):
            question = next(
                (m["content"] for m in reversed(c.messages) if m.get("role") == "user"), ""
            )
            expected = None if "irrelevance" in category else c.answer
            out.append(EvalCase(c.id, category, question, c.functions, expected))
    return out


def file_cases(
    questions: str | Path, answers: str | Path | None = None, category: str | None = None
) -> tuple[list[EvalCase], list[str]]:
    """A BFCL-format pair of JSON-lines files: questions (`id`, `question`, `function`) and
    answers (`id`, `ground_truth`). A malformed line is skipped and reported with its line
    number and the reason; a question without an answer line is an irrelevance case."""
    questions = Path(questions)
    category = category or questions.stem
    skipped: list[str] = []
    truth: dict[str, list[Expected]] = {}
    if answers:
        for number, data in _json_lines(Path(answers), skipped):
            if not isinstance(data.get("id"), str) or not isinstance(
                data.get("ground_truth"), list
            ):
                skipped.append(f"{answers}:{number}: needs a string 'id' and a 'ground_truth' list")
                continue
            truth[data["id"]] = data["ground_truth"]
    cases = []
    for number, data in _json_lines(questions, skipped):
        problem = _question_problem(data)
        if problem:
            skipped.append(f"{questions}:{number}: {problem}")
            continue
        turn = data["question"][0] if isinstance(data["question"][0], list) else data["question"]
        user = next((m["content"] for m in reversed(turn) if m.get("role") == "user"), None)
        if not isinstance(user, str):
            skipped.append(f"{questions}:{number}: field 'question' has no user message")
            continue
        cases.append(EvalCase(data["id"], category, user, data["function"], truth.get(data["id"])))
    return cases, skipped


def _question_problem(data: dict[str, Any]) -> str:
    if not isinstance(data.get("id"), str):
        return "field 'id' is missing or not a string"
    if not isinstance(data.get("question"), list) or not data["question"]:
        return "field 'question' must be a non-empty list of messages"
    functions = data.get("function")
    if not isinstance(functions, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("name"), str)
        and isinstance(f.get("parameters"), dict)
        for f in functions
    ):
        return "field 'function' must be a list of {name, description, parameters}"
    return ""


def _json_lines(path: Path, skipped: list[str]) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EdgeAgentError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            skipped.append(f"{path}:{number}: not UTF-8")
            continue
        except json.JSONDecodeError as exc:
            skipped.append(f"{path}:{number}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            skipped.append(f"{path}:{number}: not a JSON object")
            continue
        yield number, data
