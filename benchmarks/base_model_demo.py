"""What the base model does on the demo prompts: its first reply under tool_choice "auto" and
"required", with the grammar. Prints one JSON object (docs/base-model.md records it).

    python benchmarks/base_model_demo.py [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

os.environ.setdefault("EDGEAGENT_HOME", tempfile.mkdtemp(prefix="edgeagent-demo-"))

from edgeagent import Agent  # noqa: E402
from edgeagent.backends.llamacpp import LlamaCppBackend  # noqa: E402
from edgeagent.demo_tools import DEMO_TOOLS  # noqa: E402
from edgeagent.models import resolve_model  # noqa: E402

# (prompt, the tool a person would expect, or None when no tool fits)
PROMPTS = [
    ("Start a 12 minute timer for the pasta", "set_timer"),
    ("Convert 3 cups to ml", "convert_units"),
    ("What is 17 times 23?", "calculate"),
    ("Save a note: buy oat milk", "add_note"),
    ("How much memory does this device have free?", "device_status"),
    ("What time is it?", "current_time"),
    ("Find my pdf files", "find_files"),
    ("Which timers are running?", "list_timers"),
    ("Hi, how are you?", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model")
    args = parser.parse_args()
    backend = LlamaCppBackend(resolve_model(args.model))
    rows = []
    for choice in ("auto", "required"):
        agent = Agent(
            DEMO_TOOLS, backend=backend, tool_choice=choice, max_steps=2, max_tokens=96, allow="all"
        )
        for prompt, expected in PROMPTS:
            result = agent.run(prompt)
            calls = [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls]
            rows.append(
                {
                    "tool_choice": choice,
                    "prompt": prompt,
                    "expected": expected,
                    "calls": calls,
                    "right_tool": bool(calls) and calls[0]["name"] == expected,
                    "answer": result.answer[:160],
                }
            )
    summary = {
        choice: {
            "called_a_tool": sum(bool(r["calls"]) for r in rows if r["tool_choice"] == choice),
            "right_tool": sum(r["right_tool"] for r in rows if r["tool_choice"] == choice),
            "prompts_expecting_a_tool": sum(e is not None for _, e in PROMPTS),
        }
        for choice in ("auto", "required")
    }
    print(json.dumps({"summary": summary, "rows": rows}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
