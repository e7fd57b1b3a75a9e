"""Does a constrained call stop naturally? edgeagent's wire format and grammar vs plain
llama-cpp-python with a JSON-Schema grammar that allows a list of calls, on BFCL prompts,
same model, same system prompt, same token budget. Prints one JSON object.

Per configuration: mean tokens per reply, replies that ran into the token budget, replies with
a repeated call, calls per reply vs the number BFCL expects, and schema-valid replies.

    python benchmarks/bench_stopping.py [--limit 20] [--max-tokens 192]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent import Agent  # noqa: E402
from edgeagent.backends import GenerationStats, SamplingParams  # noqa: E402
from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.bfcl import case_tools, load_cases  # noqa: E402
from edgeagent.models import resolve_model  # noqa: E402
from edgeagent.wireformat import CallStream, Message, parse_reply, system_prompt  # noqa: E402


def list_schema(tools) -> dict:
    """What a user of plain llama-cpp-python writes: a JSON array of {name, arguments} objects."""
    return {
        "type": "array",
        "items": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                    "required": ["name", "arguments"],
                }
                for t in tools
            ]
        },
    }


def baseline(backend, tools, user, max_tokens):
    from llama_cpp import LlamaGrammar

    grammar = LlamaGrammar.from_json_schema(json.dumps(list_schema(tools)), verbose=False)
    messages = [  # the same system prompt and tool list as edgeagent's
        {"role": "system", "content": system_prompt(tools)},
        {"role": "user", "content": user},
    ]
    out = backend._llm.create_chat_completion(
        messages=messages, grammar=grammar, max_tokens=max_tokens, temperature=0.0
    )
    text = out["choices"][0]["message"]["content"] or ""
    tokens = out["usage"]["completion_tokens"]
    hit_budget = out["choices"][0]["finish_reason"] == "length"
    try:
        items = json.loads(text)
        calls = [(c["name"], c["arguments"]) for c in items]
    except (json.JSONDecodeError, TypeError, KeyError):
        calls = None
    return tokens, hit_budget, calls


def ours(backend, agent, user, max_tokens):
    prompt = backend.tokenize(agent.render([Message("user", user)]))
    grammar = agent.grammar(allow_answer=False, allow_calls=True)
    stats, stream = GenerationStats(), CallStream()
    pieces = backend.generate(
        prompt, grammar=grammar, sampling=SamplingParams(), max_tokens=max_tokens, stats=stats
    )
    for piece in pieces:
        if not stream.feed(piece):
            break
    pieces.close()
    reply = parse_reply(stream.text, agent.tools)
    calls = [(c.name, c.arguments) for c in reply.calls] if reply.calls else None
    repeated = stream.repeated or reply.duplicates_dropped > 0
    return stats.completion_tokens, stats.stop_reason == "length", calls, repeated


def summarize(rows):
    n = len(rows)
    return {
        "replies": n,
        "mean_tokens": round(statistics.mean(r["tokens"] for r in rows), 1),
        "hit_token_budget": sum(r["hit_budget"] for r in rows),
        "with_repeated_call": sum(r["repeated"] for r in rows),
        "parsed": sum(r["calls"] is not None for r in rows),
        "schema_valid": sum(r["valid"] for r in rows),
        "right_number_of_calls": sum(r["right_count"] for r in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--categories", default="simple_python,parallel,multiple")
    args = parser.parse_args()
    backend = LlamaCppBackend(resolve_model(args.model), n_ctx=4096)
    report = {}
    for category in args.categories.split(","):
        results = {"baseline": [], "edgeagent": []}
        for case in load_cases(category, args.limit):
            tools = case_tools(case)
            agent = Agent(tools, backend=backend, tool_choice="required")
            user = case.messages[-1]["content"]
            expected = len(case.answer or [])
            by_name = {t.name: t for t in tools}

            def row(tokens, hit, calls, repeated, by_name=by_name, expected=expected):
                valid = calls is not None and all(
                    n in by_name and _valid(by_name[n], a) for n, a in calls
                )
                right_count = calls is not None and len(calls) == expected
                return {
                    "tokens": tokens,
                    "hit_budget": hit,
                    "calls": calls,
                    "repeated": repeated,
                    "valid": valid,
                    "right_count": right_count,
                }

            tokens, hit, calls = baseline(backend, tools, user, args.max_tokens)
            dup = calls is not None and len({json.dumps(c, sort_keys=True) for c in calls}) < len(
                calls
            )
            results["baseline"].append(row(tokens, hit, calls, dup))
            results["edgeagent"].append(row(*ours(backend, agent, user, args.max_tokens)))
        report[category] = {name: summarize(rows) for name, rows in results.items()}
    print(
        json.dumps(
            {"max_tokens": args.max_tokens, "limit": args.limit, "categories": report}, indent=2
        )
    )


def _valid(tool, arguments) -> bool:
    try:
        tool.validate(arguments)
        return True
    except Exception:
        return False


if __name__ == "__main__":
    main()
