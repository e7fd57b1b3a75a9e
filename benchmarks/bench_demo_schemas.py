"""The demo tools' schemas as the model reads them: as the shipped adapter was trained on them
(convert_units' enum of abbreviations, "mi" and "lb"; calculate's description without a
percentage), as shipped now (the enum also admits eight unit words people say, "miles" and
"cups"; the description shows "15% of 80"), and, for the record, the enum with 41 unit words.
Every demo tool offered, the first reply greedy with the grammar, the shipped adapter (or the one
given), on ten conversion requests, eight calculations and the ten demo prompts. Prints one JSON
object: each request's call under each variant, the share right, and the system prompt's tokens.

    python benchmarks/bench_demo_schemas.py [ADAPTER.gguf]

(Its first version, bench_unit_words.py, compared the enums alone: data/bench_unit_words.json.)
"""

import json
import sys
from dataclasses import replace

from edgeagent.agent import Agent
from edgeagent.backends.llamacpp import LlamaCppBackend
from edgeagent.demo_tools import (
    _UNITS,
    DEMO_PROMPTS,
    DEMO_TOOLS,
    SAID_UNITS,
    calculate,
    demo_reply_is_right,
)
from edgeagent.evaluation.runner import first_reply
from edgeagent.models import DEFAULT_ADAPTER, default_model_path
from edgeagent.tools import Tool, collect_tools
from edgeagent.train.toolbank import UNIT_WORDS, _as_trained
from edgeagent.wireformat import parse_reply

ALIASES = {w: u for u, words in UNIT_WORDS.items() for w in words} | SAID_UNITS
ALIASES |= {
    "mile": "mi", "kilometer": "km", "kilometre": "km", "meter": "m", "metre": "m", "foot": "ft",
    "inch": "in", "pound": "lb", "ounce": "oz", "gram": "g", "kilogram": "kg", "liter": "l",
    "litre": "l", "gallon": "gal", "yard": "yd", "teaspoon": "tsp", "tablespoon": "tbsp",
}  # fmt: skip

CONVERSIONS = [
    ("Convert 5 miles to km", 5, "mi", "km"),
    ("Convert 3 cups to ml", 3, "cup", "ml"),
    ("Convert 10 km to miles", 10, "km", "mi"),
    ("How many grams is 3 pounds?", 3, "lb", "g"),
    ("What is 70 fahrenheit in celsius?", 70, "fahrenheit", "celsius"),
    ("Convert 2 feet to cm", 2, "ft", "cm"),
    ("How many ounces in 2 kg?", 2, "kg", "oz"),
    ("Convert 4 gallons to liters", 4, "gal", "l"),
    ("How many meters is 300 feet?", 300, "ft", "m"),
    ("Convert 12 inches to centimeters", 12, "in", "cm"),
]
#: (request, the value the calculation must come to)
CALCULATIONS = [
    ("What is 18% of 240?", 43.2),
    ("What's 15% of 80?", 12),
    ("Calculate 20 percent of 55", 11),
    ("How much is a 15% tip on a $42 bill?", 6.3),
    ("What is 7.5% of 1200?", 90),
    ("What is 144 divided by 12?", 12),
    ("Add 345 and 678", 1023),
    ("What is 2 to the power of 10?", 1024),
]


def with_enum(tool: Tool, units: list[str]) -> Tool:
    """`tool` (convert_units) offering `units` as its enum."""
    properties = {
        k: {**p, "enum": units} if "enum" in p else p
        for k, p in tool.parameters["properties"].items()
    }
    return replace(tool, parameters={**tool.parameters, "properties": properties})


AS_TRAINED = [_as_trained(t) for t in DEMO_TOOLS]
WORDS_41 = sorted(set(ALIASES) - set(_UNITS))
VARIANTS = {
    "as trained": AS_TRAINED,
    "as trained, 41 unit words": [
        with_enum(t, list(_UNITS) + WORDS_41) if t.name == "convert_units" else t
        for t in AS_TRAINED
    ],
    "shipped": list(DEMO_TOOLS),
}


def conversion_right(call, value, unit_from, unit_to) -> bool:
    unit = lambda u: ALIASES.get(u, u)  # noqa: E731
    return bool(
        call
        and call.name == "convert_units"
        and call.arguments.get("value") == value
        and unit(call.arguments.get("from_unit")) == unit_from
        and unit(call.arguments.get("to_unit")) == unit_to
    )


def calculation_right(call, value) -> bool:
    if not call or call.name != "calculate":
        return False
    outcome = calculate.invoke(call.arguments)
    return outcome.ok and abs(float(outcome.content.rsplit("=", 1)[1]) - value) < 1e-9


def first_calls(backend, tools, prompt):
    text, _ = first_reply(backend, tools, prompt, max_tokens=160)
    return parse_reply(text, tools).calls


def shown(calls):
    return [{"name": c.name, "arguments": c.arguments} for c in calls]


def main() -> None:
    adapter = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_ADAPTER
    backend = LlamaCppBackend(default_model_path(), n_ctx=4096, adapters={"a": adapter})
    report = {}
    for label, variant in VARIANTS.items():
        tools = collect_tools(variant)
        rows = {"conversions": [], "calculations": [], "demo": []}
        for prompt, *want in CONVERSIONS:
            calls = first_calls(backend, tools, prompt)
            right = conversion_right(calls[0] if calls else None, *want)
            rows["conversions"].append({"request": prompt, "right": right, "calls": shown(calls)})
        for prompt, value in CALCULATIONS:
            calls = first_calls(backend, tools, prompt)
            right = calculation_right(calls[0] if calls else None, value)
            rows["calculations"].append({"request": prompt, "right": right, "calls": shown(calls)})
        for prompt, name, args in DEMO_PROMPTS:
            calls = first_calls(backend, tools, prompt)
            right = demo_reply_is_right(name, args, [(c.name, c.arguments) for c in calls])
            rows["demo"].append({"request": prompt, "right": right, "calls": shown(calls)})
        system = Agent(tools, backend=backend).render([])
        report[label] = {
            **{f"{k}_right": sum(r["right"] for r in v) / len(v) for k, v in rows.items()},
            "system_prompt_tokens": len(backend.tokenize(system)),
            "rows": rows,
        }
    print(json.dumps({"adapter": str(adapter), "variants": report}, indent=1))


if __name__ == "__main__":
    main()
