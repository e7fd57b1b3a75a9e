"""Time to first token over a 10-turn conversation with the demo tools, three ways in the same
run, each on its own freshly loaded backend. Prints one JSON object.

- default: the default configuration (embedded model, the shipped adapter switched on for
  calls and off for answers), one llama.cpp context per adapter setting (the backend's default);
- default_one_context: the same with one context (max_contexts=1): each adapter switch clears
  the KV cache (the answer is written with the adapter off in a context just cleared);
- bare: the model without an adapter, KV reuse of the shared prefix (the baseline the default
  configuration should come close to);
and turn 1 of one more default session on a fresh backend, which starts from the system
prompt's state the sessions before it saved (as a second `edgeagent run` does).

    python benchmarks/bench_chat_latency.py [--turns 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import tempfile

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-bench-"))

from edgeagent import Agent  # noqa: E402
from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.demo_tools import DEMO_PROMPTS, DEMO_TOOLS  # noqa: E402
from edgeagent.models import DEFAULT_ADAPTER, default_model_path  # noqa: E402

N_CTX = 4096


def conversation(name: str, turns: int) -> dict:
    model = default_model_path()
    if name == "bare":
        backend = LlamaCppBackend(model, n_ctx=N_CTX)
        agent = Agent(DEMO_TOOLS, backend=backend, allow="all")
    else:
        contexts = 1 if name == "default_one_context" else 2
        backend = LlamaCppBackend(model, n_ctx=N_CTX, adapters={"adapter": DEFAULT_ADAPTER},
                                  max_contexts=contexts)  # fmt: skip
        agent = Agent(DEMO_TOOLS, backend=backend, adapter=DEFAULT_ADAPTER, base_answers=True,
                      allow="all")  # fmt: skip
    session = agent.session()
    prompts = [p for p, _, _ in DEMO_PROMPTS]
    rows = []
    for turn in range(turns):
        result = session.send(prompts[turn % len(prompts)])
        rows.append({
            "turn": turn + 1,
            "ttft_s": round(result.timings.ttft_s, 4),
            "total_s": round(result.timings.total_s, 3),
            "prompt_tokens": result.usage.prompt_tokens,
            "cached_tokens": result.usage.cached_tokens,
            "generations": result.usage.generations,
            "tool_calls": [c.name for c in result.tool_calls],
        })  # fmt: skip

    def median(key: str) -> float | None:
        later = [r[key] for r in rows[1:]]
        return round(statistics.median(later), 4) if later else None

    return {
        "ttft_turn1_s": rows[0]["ttft_s"],
        "total_median_turns_2_10_s": median("total_s"),
        "ttft_median_turns_2_10_s": median("ttft_s"),
        "contexts": backend.contexts,
        "turns": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    runs = {name: conversation(name, args.turns)
            for name in ("default", "default_one_context", "bare")}  # fmt: skip
    # a new session in a new backend (another process, as `edgeagent run` is each time): its
    # system prompt's state was saved by the sessions above
    saved_state = conversation("default", 1)["ttft_turn1_s"]
    default, bare = runs["default"], runs["bare"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    print(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "commit": commit,
        "n_ctx": N_CTX,
        "ttft_turn1_s": default["ttft_turn1_s"],
        "ttft_median_turns_2_10_s": default["ttft_median_turns_2_10_s"],
        "bare_ttft_turn1_s": bare["ttft_turn1_s"],
        "bare_ttft_median_turns_2_10_s": bare["ttft_median_turns_2_10_s"],
        "ttft_turn1_saved_state_s": saved_state,
        "ttft_ratio_vs_bare": round(
            default["ttft_median_turns_2_10_s"] / bare["ttft_median_turns_2_10_s"], 2),
        "one_context_ttft_median_turns_2_10_s":
            runs["default_one_context"]["ttft_median_turns_2_10_s"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
