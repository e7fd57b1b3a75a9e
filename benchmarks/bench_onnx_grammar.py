"""What the tool-call grammar costs in the onnxruntime backend (llguidance, the greedy token
checked first, the whole mask only on rejection): decode tokens/s of the same reply with and
without the grammar, alternating, on one ONNX folder. Prints JSON.

    python benchmarks/bench_onnx_grammar.py DIR [--runs 4] [--tokens 30]
"""

from __future__ import annotations

import argparse
import json
import statistics

from edgeagent import Agent
from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.demo_tools import DEMO_TOOLS
from edgeagent.wireformat import Message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="an `edgeagent export onnx` folder")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=30)
    args = parser.parse_args()
    agent = Agent(DEMO_TOOLS, model=args.folder, tool_choice="required", max_steps=1)
    backend = agent.backend
    prompt = backend.tokenize(agent.render([Message("user", "Start a 12 minute timer")]))
    grammar = agent.grammar(allow_answer=False, allow_calls=True)
    speeds: dict[str, list[float]] = {"grammar": [], "none": []}
    for _ in range(args.runs):
        for label, g in (("grammar", grammar), ("none", None)):
            stats = GenerationStats()
            for _piece in backend.generate(prompt, grammar=g, sampling=SamplingParams(),
                                           max_tokens=args.tokens, stats=stats):  # fmt: skip
                pass
            speeds[label].append((stats.completion_tokens - 1) / stats.decode_s)
    report = {k: round(statistics.median(v), 1) for k, v in speeds.items()}
    report["ratio"] = round(report["none"] / report["grammar"], 3)
    print(json.dumps({"folder": args.folder, "decode_tokens_per_s": report}, indent=2))


if __name__ == "__main__":
    main()
