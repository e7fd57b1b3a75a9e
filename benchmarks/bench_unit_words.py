"""Units as people write them: the demo convert_units as shipped (its enum holds abbreviations:
"mi", "lb") against the same tool whose enum also admits the words ("miles", "pounds"), on ten
conversion requests, every demo tool offered, first reply greedy with the grammar, the shipped
adapter (or the one given). Prints one JSON object: each request's call under each schema, the
share right, and the system prompt's tokens under each.

    python benchmarks/bench_unit_words.py [ADAPTER.gguf]
"""

import json
import sys
from typing import Literal

from edgeagent import tool
from edgeagent.agent import Agent
from edgeagent.backends.llamacpp import LlamaCppBackend
from edgeagent.demo_tools import _UNITS, DEMO_TOOLS
from edgeagent.evaluation.runner import first_reply
from edgeagent.models import DEFAULT_ADAPTER, default_model_path
from edgeagent.tools import collect_tools
from edgeagent.train.toolbank import UNIT_WORDS
from edgeagent.wireformat import parse_reply

ALIASES = {w: u for u, words in UNIT_WORDS.items() for w in words}
ALIASES.update(
    {
        "mile": "mi",
        "kilometer": "km",
        "kilometre": "km",
        "meter": "m",
        "metre": "m",
        "foot": "ft",
        "inch": "in",
        "pound": "lb",
        "ounce": "oz",
        "gram": "g",
        "kilogram": "kg",
        "liter": "l",
        "litre": "l",
        "gallon": "gal",
        "yard": "yd",
        "teaspoon": "tsp",
        "tablespoon": "tbsp",
    }
)
Words = Literal[tuple(list(_UNITS) + sorted(set(ALIASES) - set(_UNITS)))]


def with_units(units: Literal) -> object:
    """convert_units with `units` as its enum (its function is never run here)."""

    @tool
    def convert_units(value: float, from_unit: units, to_unit: units) -> str:  # type: ignore[valid-type]
        """Convert a quantity between units of length, mass, volume or temperature.

        Args:
            value: the quantity to convert
            from_unit: the unit of the value
            to_unit: the unit wanted
        """
        return ""

    return convert_units


#: only the units people say as words rather than abbreviate (a shorter prompt)
SAID = ["miles", "feet", "inches", "pounds", "ounces", "gallons", "cups", "yards"]
VARIANTS = {
    "shipped enum": None,
    "with words": with_units(Words),
    "with 8 said words": with_units(Literal[tuple(list(_UNITS) + SAID)]),
}

CASES = [
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
backend = LlamaCppBackend(
    default_model_path(),
    n_ctx=4096,
    adapters={"a": sys.argv[1] if len(sys.argv) > 1 else DEFAULT_ADAPTER},
)
report = {}
for label, conv in VARIANTS.items():
    tools = collect_tools(
        [t if t.name != "convert_units" or conv is None else conv for t in DEMO_TOOLS]
    )
    ok, rows = 0, []
    for prompt, v, f, t in CASES:
        text, _ = first_reply(backend, tools, prompt, max_tokens=160)
        calls = parse_reply(text, tools).calls
        c = calls[0] if calls else None
        right = bool(
            c
            and c.name == "convert_units"
            and c.arguments.get("value") == v
            and ALIASES.get(c.arguments.get("from_unit"), c.arguments.get("from_unit")) == f
            and ALIASES.get(c.arguments.get("to_unit"), c.arguments.get("to_unit")) == t
        )
        ok += right
        rows.append(
            {
                "request": prompt,
                "right": right,
                "call": c and {"name": c.name, "arguments": c.arguments},
            }
        )
    prompt_tokens = len(backend.tokenize(Agent(tools, backend=backend).render([])))
    report[label] = {"right": ok / len(CASES), "system_prompt_tokens": prompt_tokens, "rows": rows}
print(json.dumps(report, indent=1))
