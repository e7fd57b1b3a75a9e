"""Beyond single calls: multi-turn coherence (after a scripted tool result, does the answer use
the result's values?) and a regression check of general ability (perplexity on a general text
and answers to no-tool prompts, adapter on against off), so a fine-tune that forgets how to chat
is caught.

Cases ship in edgeagent/data/eval/: coherence.jsonl ({id, question, function (BFCL format),
result, expect: strings any of which the answer must contain}) and general_prompts.jsonl
({prompt, expect}).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib.resources import files
from typing import Any

from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.replies import ADAPTER
from edgeagent.tools import Tool

#: a fine-tune regresses when its perplexity on the general text grows by more than this
#: factor, or when it answers this many fewer of the no-tool prompts
PERPLEXITY_LIMIT = 1.15
ANSWERS_DROP_LIMIT = 0.2


def shipped(name: str) -> list[dict[str, Any]]:
    text = files("edgeagent").joinpath(f"data/eval/{name}").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def contains_any(text: str, expected: list[str]) -> bool:
    low = text.lower()
    return any(e.lower() in low for e in expected)


@dataclass
class CoherenceResult:
    id: str
    called: bool
    answer: str
    ok: bool


def coherence(
    evaluator: Any, adapter: bool, grammar: bool, cases: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Each case: the agent (up to 3 steps) with one tool whose function returns the scripted
    result; right when it called the tool and its answer contains an expected value."""
    from edgeagent.agent import Agent
    from edgeagent.bfcl import to_json_schema

    backend = evaluator.backend
    use_adapter = adapter and evaluator.adapter is not None
    results = []
    for case in cases or shipped("coherence.jsonl"):
        f = case["function"][0]
        result = case["result"]
        tool = Tool.from_schema(
            f["name"],
            f["description"],
            to_json_schema(f["parameters"]),
            fn=lambda _r=result, **_: _r,
        )
        agent = Agent(
            [tool],
            backend=backend,
            adapter=evaluator.adapter if use_adapter else None,
            answer_adapter=evaluator.answer_adapter if use_adapter else None,
            recovery_adapter=evaluator.recovery_adapter if use_adapter else None,
            constrained=grammar,
            max_steps=3,
            base_answers=evaluator.shipped_adapter,
        )
        if evaluator.adapter is not None:
            backend.set_adapters({ADAPTER: 1.0} if use_adapter else {})
        run = agent.run(case["question"])
        called = any(c.name == f["name"] for c in run.tool_calls)
        ok = called and contains_any(run.answer, case["expect"])
        results.append(CoherenceResult(case["id"], called, run.answer, ok))
    n = len(results)
    return {
        "cases": n,
        "called": round(sum(r.called for r in results) / n, 3),
        "answer_uses_result": round(sum(r.ok for r in results) / n, 3),
        "results": [asdict(r) for r in results],
    }


def no_tool_answers(
    evaluator: Any, adapter: bool, prompts: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Answers to general prompts with no tools offered, the adapter on (scale 1 throughout)
    or off: the share that contain an expected word."""
    from edgeagent.agent import Agent
    from edgeagent.wireformat import Message

    backend = evaluator.backend
    if evaluator.adapter is not None:
        backend.set_adapters({ADAPTER: 1.0} if adapter else {})
    agent = Agent([], backend=backend)
    rows = []
    for item in prompts or shipped("general_prompts.jsonl"):
        ids = backend.tokenize(agent.render([Message("user", item["prompt"])]))
        text = "".join(
            backend.generate(
                ids, grammar=None, sampling=SamplingParams(), max_tokens=48, stats=GenerationStats()
            )
        )
        rows.append(
            {
                "prompt": item["prompt"],
                "answer": text.strip(),
                "ok": contains_any(text, item["expect"]),
            }
        )
    return {
        "prompts": len(rows),
        "right": round(sum(r["ok"] for r in rows) / len(rows), 3),
        "answers": rows,
    }


def perplexity(
    model: str, adapter: str | None, max_tokens: int = 512, text: str | None = None
) -> float:
    """Perplexity of the model (with the GGUF LoRA adapter applied, if given) on `text`, by
    default the shipped general text, in llama.cpp."""
    import llama_cpp
    import numpy as np

    if text is None:
        text = files("edgeagent").joinpath("data/general.txt").read_text(encoding="utf-8")
    llm = llama_cpp.Llama(
        model,
        n_ctx=max_tokens + 8,
        n_batch=max_tokens,
        logits_all=True,
        lora_path=adapter,
        verbose=False,
    )
    try:
        ids = llm.tokenize(text.encode(), add_bos=False)[:max_tokens]
        llm.eval(ids)
        logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
    finally:
        llm.close()
    x = logits[:-1] - logits[:-1].max(-1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    return math.exp(-logp[np.arange(len(ids) - 1), ids[1:]].mean())


def regression(evaluator: Any) -> dict[str, Any]:
    """The adapter against the bare model: perplexity on the general text and no-tool answers."""
    if evaluator.adapter is None:
        return {"checked": False, "why": "no adapter to compare with the bare model"}
    base_ppl = perplexity(evaluator.model, None)
    tuned_ppl = perplexity(evaluator.model, str(evaluator.adapter))
    base = no_tool_answers(evaluator, adapter=False)
    tuned = no_tool_answers(evaluator, adapter=True)
    ratio = tuned_ppl / base_ppl
    drop = base["right"] - tuned["right"]
    return {
        "checked": True,
        "perplexity": {
            "bare": round(base_ppl, 3),
            "adapter": round(tuned_ppl, 3),
            "ratio": round(ratio, 3),
        },
        "no_tool_answers": {
            "bare": base["right"],
            "adapter": tuned["right"],
            "prompts": base["prompts"],
        },
        "regressed": ratio > PERPLEXITY_LIMIT or drop > ANSWERS_DROP_LIMIT,
        "limits": {"perplexity_ratio": PERPLEXITY_LIMIT, "answers_drop": ANSWERS_DROP_LIMIT},
        "answers": {"bare": base["answers"], "adapter": tuned["answers"]},
    }
