"""Stopping a turn (Agent.interrupt, the chat's Escape key): how long it takes, and what the
abort hook costs, against raw llama-cpp-python in the same run. Prints one JSON object.

1. prompt evaluation: `Llama.eval` of a ~1,000-token prompt, raw vs through our backend, which
   installs llama.cpp's abort callback for the prompt (a Python callback at every graph node);
2. decoding: tokens/s raw vs ours (no callback while decoding: the flag is checked per token);
3. latency: interrupt() from another thread at a random moment of a chat turn's prompt
   evaluation, until the turn raises Interrupted.

    python benchmarks/bench_interrupt.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import threading
import time

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent import Agent  # noqa: E402
from edgeagent.backends import GenerationStats, SamplingParams  # noqa: E402
from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.errors import Interrupted  # noqa: E402
from edgeagent.wireformat import Message  # noqa: E402

PROMPT = "Tell me a long story about a dragon who guards a library."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode-tokens", type=int, default=64)
    args = parser.parse_args()

    agent = Agent(DEMO_TOOLS, adapter=None)
    backend = agent.backend
    llm = backend._llm
    prompt = backend.tokenize(agent.render([Message("user", PROMPT)]))

    raw_prompt, our_prompt, raw_decode, our_decode = [], [], [], []
    for _ in range(args.repeats):
        llm.reset()
        t = time.perf_counter()
        llm.eval(prompt)
        raw_prompt.append(time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(args.decode_tokens):  # greedy, as ours
            llm.eval([_argmax(backend)])
        raw_decode.append(args.decode_tokens / (time.perf_counter() - t))

        llm.reset()
        stats = GenerationStats()
        pieces = backend.generate(
            prompt, grammar=None, sampling=SamplingParams(), max_tokens=10**6, stats=stats
        )
        for _ in pieces:
            if stats.completion_tokens > args.decode_tokens:
                break
        pieces.close()
        our_prompt.append(stats.prompt_eval_s)
        our_decode.append((stats.completion_tokens - 1) / stats.decode_s)

    rng = random.Random(0)
    latencies, evaluated = [], []
    for _ in range(args.repeats * 2):
        llm.reset()
        session = agent.session()
        when = rng.uniform(0.05, 0.9) * statistics.median(raw_prompt)
        fired: list[float] = []

        def stop(fired: list[float] = fired) -> None:
            fired.append(time.perf_counter())
            agent.interrupt()

        timer = threading.Timer(when, stop)
        timer.start()
        try:
            for _ in session.stream(PROMPT):
                pass
            timer.cancel()  # finished before the interrupt: not a sample
        except Interrupted:
            latencies.append(time.perf_counter() - fired[0])
            evaluated.append(llm.n_tokens)

    med = statistics.median
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "threads": backend.n_threads,
                "prompt_tokens": len(prompt),
                "prompt_eval_s": {
                    "raw": round(med(raw_prompt), 3),
                    "ours": round(med(our_prompt), 3),
                },
                "prompt_eval_ratio": round(med(our_prompt) / med(raw_prompt), 3),
                "decode_tok_s": {
                    "raw": round(med(raw_decode), 1),
                    "ours": round(med(our_decode), 1),
                },
                "decode_ratio": round(med(our_decode) / med(raw_decode), 3),
                "interrupt_latency_ms": {
                    "samples": len(latencies),
                    "median": round(1000 * med(latencies), 1),
                    "max": round(1000 * max(latencies), 1),
                },
                "tokens_cached_when_stopped": evaluated,
            },
            indent=2,
        )
    )


def _argmax(backend) -> int:
    import llama_cpp
    import numpy as np

    logits = np.ctypeslib.as_array(
        llama_cpp.llama_get_logits_ith(backend._llm._ctx.ctx, -1), shape=(backend._n_vocab,)
    )
    return int(np.argmax(logits))


if __name__ == "__main__":
    main()
