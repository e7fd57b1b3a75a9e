"""Runtime overheads, each against a baseline measured in the same run. Prints one JSON object.

1. decode tokens/s of Agent vs raw llama-cpp-python (Llama.generate) on the same model, prompt
   and threads (same greedy tokens);
2. wall time of a grammar-constrained tool call vs the same number of tokens generated without
   a grammar, from the same cached prompt;
3. time to first token on turn 5 of a conversation with KV reuse vs a cold re-prefill of the
   same history (turn-5 prompt of at least 1,000 tokens).

    python benchmarks/bench_runtime.py [--model PATH] [--threads N] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent import Agent  # noqa: E402
from edgeagent.backends import GenerationStats, SamplingParams  # noqa: E402
from edgeagent.backends.llamacpp import LlamaCppBackend, default_threads  # noqa: E402
from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import resolve_model  # noqa: E402
from edgeagent.wireformat import Message  # noqa: E402

STORY = "Write a long, detailed story about a lighthouse keeper and a storm."
CALL = "Convert 3 cups to ml"


def raw_decode(backend: LlamaCppBackend, prompt: list[int], n: int) -> tuple[int, float]:
    """llama-cpp-python's own generator, greedy, cold cache: (tokens after the first, seconds)."""
    llm = backend._llm
    llm.reset()
    count, first = 0, 0.0
    for token in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0):
        if not first:
            first = time.perf_counter()
        else:
            count += 1
        if count >= n - 1 or backend._eog(backend._vocab, token):
            break
    return count, time.perf_counter() - first


def agent_decode(agent: Agent, n: int) -> tuple[int, float]:
    agent.backend._llm.reset()
    agent.max_tokens = n
    result = agent.run(STORY)
    return result.usage.completion_tokens - 1, result.timings.decode_s


def bench_decode(backend: LlamaCppBackend, repeats: int, n: int) -> dict:
    agent = Agent([], backend=backend, tool_choice="none", constrained=False)
    prompt = backend.tokenize(agent.render([Message("user", STORY)]))
    raw, ours = [], []
    for _ in range(repeats):  # interleaved, so drift hits both alike
        c, t = raw_decode(backend, prompt, n)
        raw.append(c / t)
        c2, t2 = agent_decode(agent, n)
        ours.append(c2 / t2)
    raw_tps, agent_tps = statistics.median(raw), statistics.median(ours)
    return {
        "tokens": n,
        "raw_llama_cpp_tokens_per_s": round(raw_tps, 2),
        "agent_tokens_per_s": round(agent_tps, 2),
        "agent_overhead_pct": round((raw_tps / agent_tps - 1) * 100, 2),
    }


def bench_grammar(backend: LlamaCppBackend, repeats: int) -> dict:
    agent = Agent(DEMO_TOOLS, backend=backend, tool_choice="required")
    grammar = agent.grammar(allow_answer=False, allow_calls=True)
    prompt = backend.tokenize(agent.render([Message("user", CALL)]))
    greedy = SamplingParams()
    from llama_cpp import LlamaGrammar

    chain_grammar = LlamaGrammar.from_string(grammar, verbose=False)
    constrained, free, chain, n_tokens, text = [], [], [], 0, ""
    for _ in range(repeats):
        stats = GenerationStats()
        start = time.perf_counter()
        text = "".join(
            backend.generate(prompt, grammar=grammar, sampling=greedy, max_tokens=128, stats=stats)
        )
        constrained.append(time.perf_counter() - start)
        n_tokens = stats.completion_tokens
        # The same number of tokens, no grammar, same cached prompt (EOS ignored: raw loop).
        start = time.perf_counter()
        llm = backend._llm
        llm.n_tokens = len(prompt) - 1  # the prompt is cached from the call above
        for count, _token in enumerate(llm.generate(prompt[-1:], temp=0.0, reset=False), 1):
            if count >= n_tokens + 1:
                break
        free.append(time.perf_counter() - start)
        # llama-cpp-python's own grammar path: the grammar in its sampler chain, applied to
        # every candidate on every step.
        start = time.perf_counter()
        llm.n_tokens = len(prompt) - 1
        tokens = llm.generate(prompt[-1:], temp=0.0, reset=False, grammar=chain_grammar)
        for count, _token in enumerate(tokens, 1):
            if count >= n_tokens:
                break
        chain.append(time.perf_counter() - start)
    c, f, ch = statistics.median(constrained), statistics.median(free), statistics.median(chain)
    return {
        "call": text,
        "tokens": n_tokens,
        "constrained_s": round(c, 4),
        "unconstrained_s": round(f, 4),
        "ratio": round(c / f, 3),
        "llama_cpp_python_grammar_s": round(ch, 4),
        "llama_cpp_python_grammar_ratio": round(ch / f, 3),
    }


def bench_kv_reuse(backend: LlamaCppBackend, repeats: int) -> dict:
    agent = Agent(DEMO_TOOLS, backend=backend, max_steps=1, max_tokens=48, tool_choice="none")
    turns = [
        "Hi!",
        "Tell me about tea.",
        "And coffee?",
        "Which has more caffeine?",
        "Thanks. One more: what about mate?",
    ]
    warm, cold, saved, prompt_tokens, cached = [], [], [], 0, 0
    load_saved_state = backend.warm_start
    for _ in range(repeats):
        backend._llm.reset()
        session = agent.session()
        for text in turns[:4]:
            session.send(text)
        # Turn 5 with the cache as the conversation left it.
        result = session.send(turns[4])
        warm.append(result.timings.ttft_s)
        prompt_tokens, cached = result.usage.prompt_tokens, result.usage.cached_tokens
        # The same turn 5, cold: the whole history evaluated again (without the saved state
        # of the system prompt, which a fresh cache otherwise starts from)
        session.messages = session.messages[:-2]
        backend._llm.reset()
        backend.warm_start = lambda prefix: None  # type: ignore[method-assign]
        cold.append(session.send(turns[4]).timings.ttft_s)
        backend.warm_start = load_saved_state  # type: ignore[method-assign]
        # and cold but from the saved state (a process that starts on an old conversation)
        session.messages = session.messages[:-2]
        backend._llm.reset()
        saved.append(session.send(turns[4]).timings.ttft_s)
    w, c, s = statistics.median(warm), statistics.median(cold), statistics.median(saved)
    return {
        "turn5_prompt_tokens": prompt_tokens,
        "turn5_cached_tokens": cached,
        "ttft_warm_s": round(w, 4),
        "ttft_cold_s": round(c, 4),
        "speedup": round(c / w, 2),
        "ttft_cold_from_saved_state_s": round(s, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    path = resolve_model(args.model)
    backend = LlamaCppBackend(path, n_ctx=2048, n_threads=args.threads)
    out = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
        },
        "model": {"path": str(path), "quantization": backend.info.quantization},
        "decode": bench_decode(backend, args.repeats, args.tokens),
        "grammar": bench_grammar(backend, args.repeats),
        "kv_reuse": bench_kv_reuse(backend, max(1, args.repeats // 2)),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
