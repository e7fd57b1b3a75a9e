"""Time to first token late in a long conversation (n_ctx 2048, the window evicting a turn at
almost every step). Prints one JSON object.

Three ways to produce each of turns 46-50, same conversation, same run:
- edgeagent: the window + KV reuse + context shift (evicted turns dropped from the cache, the
  rest shifted: only the new turn is evaluated);
- no shift: KV reuse of the shared prefix only (after an eviction, everything after the system
  prompt is evaluated again);
- cold: the whole window evaluated again every turn (no KV reuse at all).

    python benchmarks/bench_context.py [--turns 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent import Agent  # noqa: E402
from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.context import WindowSettings  # noqa: E402
from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import default_model_path  # noqa: E402


def conversation(mode: str, turns: int, measure_from: int) -> dict:
    backend = LlamaCppBackend(default_model_path(), n_ctx=2048)
    if mode == "no_shift":
        backend._can_shift = False
    agent = Agent(DEMO_TOOLS, backend=backend, tool_choice="none", max_tokens=24, max_steps=1,
                  window=WindowSettings(recall_k=0))  # fmt: skip
    session = agent.session()
    ttft, prompt, cached = [], [], []
    for turn in range(1, turns + 1):
        if mode == "cold":
            backend._llm.reset()
        result = session.send(f"Turn {turn}: tell me one short fact about the number {turn}.")
        if turn >= measure_from:
            ttft.append(result.timings.ttft_s)
            prompt.append(result.usage.prompt_tokens)
            cached.append(result.usage.cached_tokens)
    return {
        "ttft_s_median": round(statistics.median(ttft), 4),
        "prompt_tokens_mean": round(statistics.mean(prompt)),
        "cached_tokens_mean": round(statistics.mean(cached)),
        "evicted_turns": session.window.evicted_turns,
        "context_shifts": backend.shifts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    start = args.turns - 4
    runs = {
        mode: conversation(mode, args.turns, start) for mode in ("edgeagent", "no_shift", "cold")
    }
    base = runs["edgeagent"]["ttft_s_median"]
    print(json.dumps({
        "turns": args.turns,
        "measured_turns": f"{start}-{args.turns}",
        "runs": runs,
        "speedup_vs_cold": round(runs["cold"]["ttft_s_median"] / base, 2),
        "speedup_vs_no_shift": round(runs["no_shift"]["ttft_s_median"] / base, 2),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
