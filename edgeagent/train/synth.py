"""Synthesize tool-calling examples for users who have tools but no data.

From typed tools (or a JSON tool list): requests paraphrased from templates and the tools'
descriptions, argument values drawn from the schemas (enums, bounded numbers, dates, names,
places), parallel calls, and negatives (nothing fits; the fitting tool is missing from the list).
Every call is validated against its tool before it is written. Deterministic by seed.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeagent.tools import Tool
from edgeagent.train.data import Example, example_to_dict
from edgeagent.wireformat import Message, ToolCall

ASK = [
    "{desc}, {args}.",
    "Please {desc}: {args}.",
    "Can you {desc}? {args_sentence}",
    "I need you to {desc} ({args}).",
    "{args_sentence} Now {desc}.",
    "Could you {desc} for me? {args_sentence}",
]
ASK_PLAIN = ["{desc}.", "Please {desc}.", "Can you {desc}?", "I'd like you to {desc}."]
BOTH = ["{a} Also, {b}", "{a} And then {b}", "Two things: {a} Then {b}"]
OFF_TOPIC = [
    "Tell me a joke about penguins.",
    "What's the meaning of life?",
    "Write a haiku about autumn leaves.",
    "Who won the football world cup in 1998?",
    "Explain photosynthesis in one sentence.",
    "Translate 'good morning' into Japanese.",
    "Order me a pizza with extra cheese.",
    "How are you today?",
    "Recommend a good science fiction novel.",
    "Why is the sky blue?",
    "Give me three tips for sleeping better.",
    "What's the capital of Australia?",
    "Summarize the plot of Romeo and Juliet.",
    "Is a tomato a fruit or a vegetable?",
    "Write a short birthday message for my sister.",
    "What does 'serendipity' mean?",
    "Suggest a name for a golden retriever puppy.",
]
NO_TOOL_ANSWER = "I can't do that with the tools I have."
# a quarter "missing": a request for a tool that is not offered, so that a fine-tune learns to
# call only what fits (without them it calls anything on BFCL's irrelevance). "parallel" asks
# two tools (or by chance one twice). The shipped adapter's mix.
KINDS = ["single"] * 50 + ["parallel"] * 12 + ["off_topic"] * 13 + ["missing"] * 25
# With `same_tool`, a tenth of the examples ask one tool for two things at once, as people do
# ("the weather in Paris and in Oslo"), answered by one call each. Adapters trained on it make
# parallel calls (BFCL parallel 0.04 -> 0.25) but lose multiple (0.52 -> 0.44): not shipped
# (docs/benchmarks.md, "The shipped general adapter").
KINDS_SAME_TOOL = (
    ["single"] * 44 + ["parallel"] * 8 + ["parallel_same"] * 10 + ["off_topic"] * 13
    + ["missing"] * 25
)  # fmt: skip


def kinds(missing: float = 0.25, same_tool: bool = False) -> list[str]:
    """The mix of kinds to draw from, with `missing` the share of "missing" negatives (0.25: the
    mix itself). An app that always offers all its tools never sees a request for one of them
    with it missing, and a small model taught that case hesitates on exactly those requests: 0
    for such data."""
    if not 0 <= missing < 1:
        raise ValueError("missing must be a share from 0 to below 1")
    rest = [k for k in (KINDS_SAME_TOOL if same_tool else KINDS) if k != "missing"]
    return rest + ["missing"] * round(len(rest) * missing / (1 - missing))


WORDS = {
    "city": ["Paris", "Oslo", "Tokyo", "Lima", "Nairobi", "Toronto", "Madrid", "Seoul"],
    "name": ["Anna", "Marco", "Priya", "Kenji", "Lea", "Omar", "Sofia", "Tom"],
    "label": ["pasta", "tea", "laundry", "eggs", "bread", "meeting", "workout", "pizza"],
    "text": [
        "buy oat milk",
        "call the plumber",
        "book the dentist",
        "water the plants",
        "renew the passport",
        "pay the rent",
        "pick up the parcel",
    ],  # fmt: skip
    "word": ["report", "holiday", "invoice", "garden", "music", "recipe", "budget", "photos"],
}


class Synthesizer:
    """`max_offered`: each example offers the tools it needs plus random others, at most this
    many, in random order (the model learns to pick from lists it has not seen, and examples
    are shorter); None offers every tool, in the given order, every time."""

    def __init__(
        self,
        tools: Sequence[Tool],
        seed: int = 0,
        max_offered: int | None = None,
        missing: float = 0.25,
        same_tool: bool = False,
    ) -> None:
        if not tools:
            raise ValueError("the synthesizer needs at least one tool")
        self.tools = list(tools)
        self.rng = random.Random(seed)
        self.max_offered = max_offered
        self.kinds = kinds(missing, same_tool)

    def offer(self, needed: Sequence[Tool], exclude: str = "") -> list[Tool]:
        if self.max_offered is None:
            return [t for t in self.tools if t.name != exclude]
        names = {t.name for t in needed}
        others = [t for t in self.tools if t.name not in names and t.name != exclude]
        # at least one tool: an example without tools teaches nothing about choosing
        low = 0 if needed or not others else 1
        k = self.rng.randint(low, max(low, min(len(others), self.max_offered - len(names))))
        offered = list(needed) + self.rng.sample(others, k)
        self.rng.shuffle(offered)
        return offered

    def examples(self, n: int) -> list[Example]:
        return [self.example(self.rng.choice(self.kinds)) for _ in range(n)]

    def example(self, kind: str) -> Example:
        rng = self.rng
        if kind == "off_topic" or (kind == "missing" and len(self.tools) < 2):
            return Example(self.offer([]), [Message("user", rng.choice(OFF_TOPIC)),
                                            Message("assistant", NO_TOOL_ANSWER)])  # fmt: skip
        if kind == "missing":
            wanted = rng.choice(self.tools)
            call = self.call(wanted)
            offered = self.offer([], exclude=wanted.name)
            return Example(offered, [Message("user", self.request(wanted, call)),
                                     Message("assistant", NO_TOOL_ANSWER)])  # fmt: skip
        if kind in ("parallel", "parallel_same"):
            first = rng.choice(self.tools)
            second = first if kind == "parallel_same" else rng.choice(self.tools)
            a, b = self.call(first), self.call(second)
            if a == b:
                return self.example("single")
            second_ask = self.request(second, b)
            values = [v for v in b.arguments.values() if isinstance(v, str)]
            if not second_ask.startswith(("I ", "I'", *values)):  # values stay verbatim
                second_ask = second_ask[:1].lower() + second_ask[1:]
            text = rng.choice(BOTH).format(a=self.request(first, a), b=second_ask)
            offered = self.offer([first, second] if first is not second else [first])
            return Example(offered, [Message("user", text), Message("assistant", calls=[a, b])])
        tool = rng.choice(self.tools)
        call = self.call(tool)
        return Example(self.offer([tool]), [Message("user", self.request(tool, call)),
                                            Message("assistant", calls=[call])])  # fmt: skip

    def request(self, tool: Tool, call: ToolCall) -> str:
        summary = re.split(r"\.(?:\s|$)", tool.description or tool.name.replace("_", " "))[0]
        desc = summary.strip()[:1].lower() + summary.strip()[1:]
        pairs = [(k.replace("_", " "), _say(v)) for k, v in call.arguments.items()]
        if not pairs:
            text = self.rng.choice(ASK_PLAIN).format(desc=desc)
        else:
            args = ", ".join(f"{k} {v}" for k, v in pairs)
            sentence = " ".join(f"The {k} is {v}." for k, v in pairs)
            text = self.rng.choice(ASK).format(desc=desc, args=args, args_sentence=sentence)
        return text[:1].upper() + text[1:]

    def call(self, tool: Tool) -> ToolCall:
        for _ in range(20):
            args = self.value(tool.parameters, "")
            try:
                tool.validate(args)
                return ToolCall(tool.name, args)
            except Exception:
                continue
        raise ValueError(f"could not draw valid arguments for {tool.name}")

    def value(self, schema: dict[str, Any], name: str) -> Any:
        rng = self.rng
        if "enum" in schema:
            return rng.choice(schema["enum"])
        if "const" in schema:
            return schema["const"]
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            usable = [o for o in options if o.get("type") != "null"] or options
            return self.value(rng.choice(usable), name)
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            out = {}
            required = set(schema.get("required", []))
            for key, sub in schema.get("properties", {}).items():
                if key in required or rng.random() < 0.5:
                    out[key] = self.value(sub, key)
            return out
        if kind == "array":
            count = rng.randint(
                max(1, schema.get("minItems", 1)), min(3, schema.get("maxItems", 3))
            )
            return [self.value(schema.get("items", {"type": "string"}), name) for _ in range(count)]
        if kind == "integer":
            lo = int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
            hi = int(schema.get("maximum", schema.get("exclusiveMaximum", lo + 100) - 1))
            top = lo + 30 if rng.random() < 0.8 else lo + 1000  # mostly everyday sizes
            return rng.randint(lo, max(lo, min(hi, top)))
        if kind == "number":
            low = float(schema.get("minimum", 0.0))
            high = float(schema.get("maximum", low + 100.0))
            return round(rng.uniform(low, high), 2)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "string":
            return self.string(schema, name)
        return self.string({}, name)

    def string(self, schema: dict[str, Any], name: str) -> str:
        rng = self.rng
        if schema.get("format") == "date" or "date" in name:
            return (dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 364))).isoformat()
        for key, words in WORDS.items():
            if key in name:
                return rng.choice(words)
        text = rng.choice(WORDS["word"])
        return text[: schema.get("maxLength", len(text))] or "x"


def _say(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def load_tool_list(path: str | Path) -> list[Tool]:
    """Tools from a JSON file: a list of {name, description, parameters} (or OpenAI's
    {"type": "function", "function": {...}})."""
    items = json.loads(Path(path).read_text())
    tools = []
    for item in items:
        spec = item.get("function", item)
        params = spec.get("parameters", {"type": "object", "properties": {}})
        tools.append(Tool.from_schema(spec["name"], spec.get("description", ""), params))
    return tools


def synthesize(
    tools: Sequence[Tool],
    n: int,
    seed: int = 0,
    max_offered: int | None = None,
    missing: float = 0.25,
    same_tool: bool = False,
) -> list[dict[str, Any]]:
    """n canonical examples (dicts), deterministic for a seed."""
    synth = Synthesizer(tools, seed, max_offered, missing, same_tool)
    return [example_to_dict(ex) for ex in synth.examples(n)]
