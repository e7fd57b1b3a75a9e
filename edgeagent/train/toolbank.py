"""A broad, varied tool inventory for training the general tool-calling adapter.

Hundreds of tools over many domains and argument types (strings copied from the request,
enums, bounded numbers, dates, times, lists, booleans), each with requests written as people
say them. Tools are data: one line each in toolbank.txt, `name | description | params | requests`:

    params:   `city:city, units?:{celsius,fahrenheit}, days:int[1,14], tags:list[tag]`
              (`?` optional; a kind of POOLS, an enum, int/num[lo,hi], bool, list[kind])
    requests: `What's the weather in {city}?; Weather for {city} in {units}, please`
              (each must name every required parameter; `{x}` is replaced by the value,
              verbatim, so the model learns to copy values from the request)

`split_bank()` holds tools out *by tool* (every fourth tool of each domain): the adapter is
trained on the rest and scored on tools it has never seen. BFCL's data is for evaluation
only and never enters the bank.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgeagent.tools import Tool, failure
from edgeagent.train.data import Example, example_to_dict
from edgeagent.train.synth import NO_TOOL_ANSWER, Synthesizer
from edgeagent.wireformat import Message, ToolCall

POOLS: dict[str, list[str]] = {
    "city": ["Paris", "Oslo", "Tokyo", "Lima", "Nairobi", "Toronto", "Madrid", "Seoul", "Berlin",
             "Cairo", "Austin", "Lisbon", "Mumbai", "Sydney", "Boston", "Zurich", "Hanoi"],
    "country": ["France", "Japan", "Brazil", "Kenya", "Canada", "Norway", "India", "Mexico",
                "Italy", "Vietnam", "Egypt", "Chile"],
    "person": ["Anna", "Marco", "Priya", "Kenji", "Lea", "Omar", "Sofia", "Tom", "Dr. Okafor",
               "Grace Liu", "Ben Carter", "Aisha Khan", "Luis", "mom", "Jonas Weber"],
    "email": ["anna@example.com", "marco.rossi@mail.com", "priya.n@work.org", "tom@acme.io",
              "support@shop.example", "kenji@lab.jp"],
    "phone": ["+1 555 0134", "+44 20 7946 0958", "555-0199", "+49 30 1234567", "0612345678"],
    "time": ["07:30", "09:00", "12:15", "14:00", "18:45", "21:00", "06:00", "16:30"],
    "text": ["running 10 minutes late", "the meeting moved to Friday", "don't forget the keys",
             "happy birthday!", "can you call me back?", "dinner is ready", "see you at the gym"],
    "query": ["cheap flights", "vegan lasagna", "python decorators", "best hiking trails",
              "noise cancelling headphones", "solar panels", "how to fix a bike chain"],
    "title": ["Weekly sync", "Dentist", "Project kickoff", "Yoga class", "Budget review",
              "Mom's birthday", "Team lunch", "Car service"],
    "product": ["oat milk", "AA batteries", "running shoes", "coffee beans", "a phone charger",
                "dish soap", "printer paper", "green tea"],
    "song": ["Bohemian Rhapsody", "Clair de Lune", "Blinding Lights", "Hey Jude", "Take Five"],
    "artist": ["Miles Davis", "Taylor Swift", "Daft Punk", "Adele", "Queen", "Nina Simone"],
    "movie": ["Inception", "Spirited Away", "The Matrix", "Amelie", "Parasite", "Up"],
    "book": ["Dune", "Beloved", "The Hobbit", "Sapiens", "Norwegian Wood", "Middlemarch"],
    "language": ["French", "Spanish", "German", "Japanese", "Italian", "Korean", "Portuguese"],
    "currency": ["USD", "EUR", "JPY", "GBP", "CHF", "INR", "CAD"],
    "url": ["https://example.com", "https://news.example.org/today", "https://docs.python.org"],
    "file": ["report.pdf", "notes.txt", "budget.xlsx", "photo.jpg", "slides.pptx", "data.csv"],
    "folder": ["Documents", "Downloads", "Pictures/2026", "projects/edge", "backup"],
    "address": ["12 Baker Street", "400 Main St", "5 Rue Cler", "88 Harbour Road"],
    "company": ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries"],
    "ingredient": ["chicken", "tofu", "spinach", "mushrooms", "chickpeas", "salmon", "rice"],
    "color": ["red", "blue", "warm white", "green", "purple", "orange"],
    "room": ["kitchen", "bedroom", "living room", "office", "garage", "bathroom", "hallway"],
    "device": ["thermostat", "porch light", "speaker", "TV", "fan", "robot vacuum"],
    "team": ["Arsenal", "Lakers", "Yankees", "Real Madrid", "Warriors", "Bayern"],
    "ticker": ["AAPL", "MSFT", "TSLA", "NVDA", "AMZN", "GOOG"],
    "airport": ["JFK", "LHR", "CDG", "NRT", "SFO", "FRA", "SIN"],
    "cuisine": ["Thai", "Italian", "Mexican", "Indian", "Japanese", "Ethiopian"],
    "dish": ["pad thai", "risotto", "tacos", "ramen", "shakshuka", "paella"],
    "username": ["@sunny_dev", "@marco_r", "@priya", "@techtom", "@leafy"],
    "tag": ["work", "urgent", "family", "travel", "ideas", "health"],
    "medication": ["ibuprofen", "vitamin D", "amoxicillin", "melatonin"],
    "exercise": ["running", "cycling", "swimming", "yoga", "rowing", "hiking"],
    "topic": ["climate", "space", "elections", "football", "AI", "markets", "health"],
    "word": ["serendipity", "ephemeral", "ubiquitous", "resilient", "candid"],
    "plant": ["basil", "monstera", "tomatoes", "orchid", "ferns"],
    "pet": ["Rex", "Luna", "Milo", "Bella"],
    "label": ["pasta", "tea", "laundry", "eggs", "bread", "oven", "pizza", "rice", "parking"],
    "expression": ["2+2*3", "(15-4)/2", "17*23", "1024/8", "3.5*4", "2**10", "99-42"],
    "pattern": ["*.pdf", "*.txt", "report*", "*.jpg", "budget*", "*.csv"],
    "station": ["Central Station", "Gare du Nord", "Union Square", "Shibuya"],
    "course": ["Linear Algebra", "Intro to Biology", "French B1", "Data Structures"],
}  # fmt: skip

BANK_FILE = Path(__file__).with_name("toolbank.txt")
SCALARS = {"int": "integer", "num": "number"}
_SLOT = re.compile(r"\{(\w+)\}")
_RANGE = re.compile(r"(int|num)\[(-?[\d.]+),(-?[\d.]+)\]")


@dataclass(frozen=True)
class BankTool:
    """A tool of the bank: its schema, the kind of each parameter, and its requests."""

    domain: str
    tool: Tool
    kinds: dict[str, str]
    requests: tuple[str, ...]


def _param(spec: str) -> tuple[str, bool, str, dict[str, Any]]:
    name, kind = (s.strip() for s in spec.split(":", 1))
    optional = name.endswith("?")
    name = name.rstrip("?")
    label = name.replace("_", " ")
    if kind.startswith("{"):
        values = [v.strip() for v in kind.strip("{}").split(",")]
        return name, optional, "enum", {"type": "string", "enum": values, "description": label}
    if m := _RANGE.fullmatch(kind):
        cast = int if m[1] == "int" else float
        bounds = {"type": SCALARS[m[1]], "minimum": cast(m[2]), "maximum": cast(m[3])}
        return name, optional, kind, {**bounds, "description": label}
    if kind == "bool":
        return name, optional, kind, {"type": "boolean", "description": label}
    if m := re.fullmatch(r"list\[(\w+)\]", kind):
        if m[1] not in POOLS:
            raise ValueError(f"unknown kind {m[1]!r} in {spec!r}")
        items = {"type": "string"}
        return name, optional, kind, {"type": "array", "items": items, "description": label}
    if kind not in POOLS and kind != "date":
        raise ValueError(f"unknown kind {kind!r} in {spec!r}")
    schema: dict[str, Any] = {"type": "string", "description": label}
    if kind == "date":
        schema["description"] = f"{label} (YYYY-MM-DD)"
    return name, optional, kind, schema


def _split_params(params: str) -> list[str]:
    return re.split(r",(?![^{\[]*[}\]])", params)  # not the commas inside {...} or [...]


def _sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in BANK_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif line and not line.startswith("#"):
            current.append(line)
    return sections


def _parse(domain: str, line: str) -> BankTool:
    name, description, params, requests = (part.strip() for part in line.split("|"))
    properties, required, kinds = {}, [], {}
    for spec in filter(None, (p.strip() for p in _split_params(params))):
        pname, optional, kind, schema = _param(spec)
        properties[pname], kinds[pname] = schema, kind
        if not optional:
            required.append(pname)
    schema = {"type": "object", "properties": properties, "required": required}
    texts = tuple(r.strip() for r in requests.split(";") if r.strip())
    for text in texts:
        slots = set(_SLOT.findall(text))
        if not set(required) <= slots <= set(properties):
            raise ValueError(f"{name}: request {text!r} must name {required} and no others")
    return BankTool(domain, Tool.from_schema(name, description, schema), kinds, texts)


def _demo(lines: list[str]) -> list[BankTool]:
    """The demo tools with their real schemas, and kinds and requests from the [demo] lines."""
    from edgeagent.demo_tools import DEMO_TOOLS

    by_name = {t.name: _as_trained(t) for t in DEMO_TOOLS}
    out = []
    for line in lines:
        name, params, requests = (part.strip() for part in line.split("|"))
        kinds = dict(p.strip().split(":") for p in _split_params(params) if p.strip())
        texts = tuple(r.strip() for r in requests.split(";"))
        out.append(BankTool("demo", by_name[name], kinds, texts))
    return out


#: Demo tools' descriptions as the shipped adapter was trained on them, where they changed since.
_TRAINED_DESCRIPTIONS = {
    "calculate": 'Evaluate an arithmetic expression such as "(12 + 3) * 4 / 5".',
}


def _as_trained(tool: Tool) -> Tool:
    """The demo tool as the shipped adapter was trained on it, so that `make adapter` still
    writes the same data: calculate's description before it showed a percentage, and
    convert_units' unit enum without the words it admits since (SAID_UNITS). Calls that
    validate under the old schema validate under the new one."""
    from edgeagent.demo_tools import SAID_UNITS

    properties = {
        name: {**p, "enum": [u for u in p["enum"] if u not in SAID_UNITS]} if "enum" in p else p
        for name, p in tool.parameters["properties"].items()
    }
    description = _TRAINED_DESCRIPTIONS.get(tool.name, tool.description)
    trained = replace(tool, description=description,
                      parameters={**tool.parameters, "properties": properties})  # fmt: skip
    return tool if trained == tool else trained


def load_bank() -> list[BankTool]:
    """Every tool of the bank, the demo tools (never held out) last."""
    sections = _sections()
    demo = sections.pop("demo", [])
    tools = [_parse(domain, line) for domain, lines in sections.items() for line in lines]
    tools += _demo(demo)
    names = [t.tool.name for t in tools]
    if len(set(names)) != len(names):
        raise ValueError("tool names in the bank must be unique")
    return tools


def split_bank(bank: Sequence[BankTool]) -> tuple[list[BankTool], list[BankTool]]:
    """(train, held out): every fourth tool of each domain is held out, whole."""
    train: list[BankTool] = []
    held: list[BankTool] = []
    for domain in dict.fromkeys(t.domain for t in bank):
        if domain == "demo":
            train += [t for t in bank if t.domain == domain]
            continue
        for i, item in enumerate(t for t in bank if t.domain == domain):
            (held if i % 4 == 3 else train).append(item)
    return train, held


def bank_tools(part: str = "train") -> list[BankTool]:
    """ "train" (with the demo tools), "held-out" (unseen by the shipped adapter), "demo" (the
    demo tools alone) or "all"."""
    bank = load_bank()
    train, held = split_bank(bank)
    demo = [t for t in bank if t.domain == "demo"]
    return {"train": train, "held-out": held, "demo": demo, "all": bank}[part]


class BankSynthesizer(Synthesizer):
    """The synthesizer over bank tools: requests as people write them (the tool's own
    phrasings, most of the time), values from the parameter's kind, copied verbatim."""

    def __init__(
        self,
        bank: Sequence[BankTool],
        seed: int = 0,
        max_offered: int | None = 4,
        siblings: float = 0.0,
        missing: float = 0.25,
        masked: float = 0.0,
        same_tool: bool = False,
        numbers: float = 0.0,
        retries: float = 0.0,
    ) -> None:
        super().__init__([b.tool for b in bank], seed, max_offered, missing, same_tool)
        self.masked = masked
        self.numbers = numbers
        self.retries = retries
        self.by_name = {b.tool.name: b for b in bank}
        self.domains: dict[str, list[Tool]] = {}
        for item in bank:
            self.domains.setdefault(item.domain, []).append(item.tool)
        self.siblings = siblings
        self.planned: dict[str, str] = {}  # the request template of each drawn call

    def examples(self, n: int) -> list[Example]:
        """With `siblings`, that share of the examples offers a whole domain of look-alike
        tools: two thirds ask for one of them, a third for a sibling that is not offered (a
        near miss, as BFCL's irrelevance cases are: "a circle's area" next to a triangle's).
        Random lists rarely hold a tool close enough to confuse; a device's tools all do.
        With `masked`, that share has its tool names replaced by meaningless ones (function
        masking): the model must read the descriptions, not match names to words."""
        out = []
        for _ in range(n):
            if self.siblings and self.rng.random() < self.siblings:
                example = self.example(self.rng.choice(["domain", "domain", "near_miss"]))
            elif self.numbers and self.rng.random() < self.numbers:
                example = self.numbers_example()
            elif self.retries and self.rng.random() < self.retries:
                example = self.retry_example() or self.example("single")
            else:
                example = self.example(self.rng.choice(self.kinds))
            if self.masked and self.rng.random() < self.masked:
                example = mask_names(example, self.rng)
            out.append(example)
        return out

    def example(self, kind: str) -> Example:
        """A third of the calls go on with their results and an answer: after a result the
        model answers instead of calling again."""
        if kind in ("domain", "near_miss"):
            example = self.sibling_example(kind == "near_miss")
        elif kind == "parallel_same" and self.rng.random() < 0.6:
            example = self.values_example()
        else:
            example = super().example(kind)
        reply = example.messages[-1]
        if reply.calls and self.rng.random() < 0.33:
            results = [Message("tool", json.dumps({"ok": True}), name=c.name) for c in reply.calls]
            answer = Message("assistant", self.rng.choice(DONE))
            return Example(example.tools, [*example.messages, *results, answer])
        return example

    def sibling_example(self, near_miss: bool) -> Example:
        wanted = self.rng.choice(self.tools)
        family = self.domains[self.by_name[wanted.name].domain]
        if near_miss and len(family) < 2:
            return super().example("missing")
        call = self.call(wanted)
        offered = [t for t in family if not (near_miss and t is wanted)]
        self.rng.shuffle(offered)
        ask = Message("user", self.request(wanted, call))
        if near_miss:
            return Example(offered, [ask, Message("assistant", NO_TOOL_ANSWER)])
        return Example(offered, [ask, Message("assistant", calls=[call])])

    def values_example(self) -> Example:
        """One request naming two or three values of one argument ("the weather in Paris and
        Oslo", "... and the same for Lima"): one call per value, alike but for that argument."""
        rng = self.rng
        tool = rng.choice(self.tools)
        item = self.by_name[tool.name]
        first = self.call(tool)
        template = self.planned[_key(first)]
        slots = [s for s in dict.fromkeys(_SLOT.findall(template))
                 if not item.kinds[s].startswith(("list[", "bool"))]  # fmt: skip
        if not slots:
            return self.example("single")
        slot = rng.choice(slots)
        values = [first.arguments[slot]]
        for _ in range(12):
            value = self.draw(item.kinds[slot], tool.parameters["properties"][slot])
            if value not in values:
                values.append(value)
            if len(values) == (3 if rng.random() < 0.25 else 2):
                break
        if len(values) < 2:
            return self.example("single")
        calls = [ToolCall(tool.name, {**first.arguments, slot: v}) for v in values]
        for call in calls:
            tool.validate(call.arguments)
        said = [_say(v) for v in values]
        if rng.random() < 0.6:
            joined = ", ".join(said[:-1]) + " and " + said[-1]
            text = _SLOT.sub(lambda m: joined if m[1] == slot else _say(first.arguments[m[1]]),
                             template)  # fmt: skip
            text = text[:1].upper() + text[1:] + rng.choice(["?", ".", ""])
        else:
            more = " and ".join(said[1:])
            text = self.request(tool, first).rstrip(".!? ") + rng.choice(
                [
                    f". Also for {more}.",
                    f", and the same for {more}.",
                    f". Then repeat with {more}.",
                ]
            )
        return Example(
            self.offer([tool]), [Message("user", text), Message("assistant", calls=calls)]
        )

    def numbers_example(self) -> Example:
        """A request that says a value as people say it, the call the value the schema wants:
        a large number ("$1,200", "$45k", "2,450.5": the call has 1200), a unit in words
        ("5 miles": the enum's "mi") or a percentage ("18% of 240", copied whole). Without
        these a model copies what the request shows: "Move $1,200 to savings" became amount
        1, "5 miles" the unit "m", "18% of 240" the expression "18%"."""
        kind = self.rng.choice(["large", "large", "large", "unit", "percent"])
        example = {"unit": self.units_example, "percent": self.percent_example}.get(kind)
        return (example and example()) or self.large_number_example() or self.example("single")

    def large_number_example(self) -> Example | None:
        rng = self.rng
        slots = [(b.tool, slot, m) for b in self.by_name.values() for slot, kind in b.kinds.items()
                 if (m := _RANGE.fullmatch(kind)) and float(m[3]) >= 2000
                 and not slot.endswith(("_id", "year", "season"))]  # fmt: skip
        if not slots:
            return None
        tool, slot, m = rng.choice(slots)
        call = self._call_saying(tool, slot)
        if call is None:
            return None
        high = int(float(m[3]))
        value: int | float = rng.choice(
            [rng.randint(1, high // 100) * 100, rng.randint(1000, high)]
        )
        if m[1] == "num" and rng.random() < 0.3:
            value = round(value + rng.randint(1, 99) / 100, 2)
        call = self._with(call, slot, min(max(value, 1000), high))
        said = said_number(call.arguments[slot], slot, rng)
        return self._said_example(tool, call, {slot: said})

    def units_example(self) -> Example | None:
        """A unit enum ("mi", "lb") said in words ("miles", "pounds")."""
        tools = [b.tool for b in self.by_name.values()
                 if any(set(UNIT_WORDS) & set(p.get("enum", ()))
                        for p in b.tool.parameters["properties"].values())]  # fmt: skip
        if not tools:
            return None
        tool = self.rng.choice(tools)
        call = self._one_dimension(tool, self.call(tool))
        said = {k: self.rng.choice(UNIT_WORDS[v]) for k, v in call.arguments.items()
                if isinstance(v, str) and v in UNIT_WORDS and self.rng.random() < 0.8}  # fmt: skip
        return self._said_example(tool, call, said) if said else None

    def _one_dimension(self, tool: Tool, call: ToolCall) -> ToolCall:
        """The call with its units of one dimension: "5 miles to km", not "5 miles to cups"."""
        units = [k for k, v in call.arguments.items() if isinstance(v, str) and v in UNIT_DIMENSION]
        for slot in units[1:]:
            dimension = UNIT_DIMENSION[call.arguments[units[0]]]
            enum = tool.parameters["properties"][slot].get("enum", ())
            alike = [u for u in enum if UNIT_DIMENSION.get(u) == dimension]
            alike = [u for u in alike if u != call.arguments[units[0]]] or alike
            if alike:
                call = self._with(call, slot, self.rng.choice(alike))
        return call

    def percent_example(self) -> Example | None:
        """A percentage of a number for an expression ("What is 18% of 240?"), copied whole."""
        rng = self.rng
        picked = self._call_of_kind({"expression"})
        if picked is None:
            return None
        tool, slot, call = picked
        share = rng.choice([rng.randint(1, 20) * 5, rng.randint(1, 99)])
        whole = rng.choice(
            [rng.randint(2, 50) * 10, rng.randint(10, 999), rng.randint(1, 99) * 100]
        )
        return self._said_example(tool, self._with(call, slot, f"{share}% of {whole}"), {})

    def retry_example(self) -> Example | None:
        """A value the tool does not know, said as the user said it: the call copies it, the
        tool fails. Two times in three its error suggests the value it knows ("did you mean
        'Paris'?") and the model calls again with that value, then answers; otherwise the error
        offers nothing to try and the model answers. Without these the model never retried
        after an error (the answers check: 0 retries)."""
        rng = self.rng
        picked = self._call_of_kind(RETRY_KINDS | SAID_AS_NAME.keys())
        if picked is None:
            return None
        tool, slot, call = picked
        good = call.arguments[slot]
        named = SAID_AS_NAME.get(self.by_name[tool.name].kinds[slot], {}).get(good)
        if named:  # a code said as the name it stands for ("Apple" for AAPL), sometimes misspelled
            bad = misspelled(named, rng) if rng.random() < 0.5 else named
        else:
            bad = misspelled(good, rng)
        if bad == good or list(call.arguments.values()).count(good) > 1:
            return None  # "Send Luis's contact to Luis": which Luis was misspelled?
        first = self._with(call, slot, bad)
        what = slot.replace("_", " ")
        ask = Message("user", self.request(tool, first))
        tried = Message("assistant", calls=[first])
        if rng.random() < 1 / 3:
            error = rng.choice(DEAD_ENDS).format(what=what, bad=bad)
            failed = Message("tool", failure(tool.name, ValueError(error)), name=tool.name)
            answer = rng.choice(GAVE_UP).format(error=error)
            return Example(self.offer([tool]), [ask, tried, failed, Message("assistant", answer)])
        error = rng.choice(SUGGESTIONS).format(what=what, bad=bad, good=good)
        fixed = self._with(first, slot, good)
        return Example(self.offer([tool]), [
            ask, tried, Message("tool", failure(tool.name, ValueError(error)), name=tool.name),
            Message("assistant", calls=[fixed]),
            Message("tool", json.dumps({"ok": True}), name=tool.name),
            Message("assistant", rng.choice(DONE)),
        ])  # fmt: skip

    def _call_of_kind(self, kinds: Collection[str]) -> tuple[Tool, str, ToolCall] | None:
        """A bank tool with a slot of one of `kinds`, that slot, and a call that says it."""
        slots = [(b.tool, slot) for b in self.by_name.values()
                 for slot, kind in b.kinds.items() if kind in kinds]  # fmt: skip
        if not slots:
            return None
        tool, slot = self.rng.choice(slots)
        call = self._call_saying(tool, slot)
        return None if call is None else (tool, slot, call)

    def _call_saying(self, tool: Tool, slot: str) -> ToolCall | None:
        """A call of `tool` from one of its request templates that says `slot`."""
        for _ in range(20):
            call = self.call(tool)
            if slot in call.arguments:
                return call
        return None

    def _with(self, call: ToolCall, slot: str, value: Any) -> ToolCall:
        """The call with another value of `slot`, asked for by the same request template."""
        template = self.planned[_key(call)]
        call = ToolCall(call.name, {**call.arguments, slot: value})
        self.by_name[call.name].tool.validate(call.arguments)
        self.planned[_key(call)] = template
        return call

    def _said_example(self, tool: Tool, call: ToolCall, said: dict[str, str]) -> Example:
        reply = Message("assistant", calls=[call])
        return Example(self.offer([tool]), [Message("user", self.request(tool, call, said)), reply])

    def call(self, tool: Tool) -> ToolCall:
        item = self.by_name[tool.name]
        template = self.rng.choice(item.requests)
        args = {slot: self.draw(item.kinds[slot], tool.parameters["properties"][slot])
                for slot in dict.fromkeys(_SLOT.findall(template))}  # fmt: skip
        call = ToolCall(tool.name, args)
        tool.validate(args)
        self.planned[_key(call)] = template
        return call

    def request(self, tool: Tool, call: ToolCall, said: dict[str, str] | None = None) -> str:
        """The call asked for in words; `said`: how some arguments are said, if not as they
        are passed."""
        template = self.planned.get(_key(call))
        if template is None:
            return super().request(tool, call)
        words = {k: _say(v) for k, v in call.arguments.items()} | (said or {})
        text = _SLOT.sub(lambda m: words[m[1]], template)
        verbatim = text.startswith(tuple(words.values()))
        if self.rng.random() < 0.15:  # a little context before the ask, as people do
            text = self.rng.choice(LEADS) + " " + (text if verbatim else _lower_first(text))
        elif not verbatim:
            text = text[:1].upper() + text[1:]
        if not text.endswith(("?", ".", "!", '"')):
            text += self.rng.choice([".", "", "!", " please."])
        return text

    def draw(self, kind: str, schema: dict[str, Any]) -> Any:
        rng = self.rng
        if kind == "enum":
            return rng.choice(schema["enum"])
        if kind == "date":
            return (dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 364))).isoformat()
        if kind == "bool":
            return rng.random() < 0.5
        if kind.startswith("list["):
            pool = POOLS[kind[5:-1]]
            return rng.sample(pool, rng.randint(2, min(3, len(pool))))
        if m := _RANGE.fullmatch(kind):
            lo, hi = float(m[2]), float(m[3])
            if m[1] == "int":
                lo, hi = int(lo), int(hi)
                return rng.randint(lo, min(hi, lo + 60) if rng.random() < 0.7 else hi)
            digits = rng.choice([0, 0, 1, 2])
            value = round(rng.uniform(lo, hi), digits)
            return int(value) if digits == 0 and int(value) >= lo else value
        return rng.choice(POOLS[kind])


DONE = ["Done.", "All set.", "OK, that's done.", "It's done.", "Finished!"]
LEADS = ["Quick one:", "Hey,", "Okay so", "When you get a chance,", "Hi!", "Right,"]

#: Kinds of value a tool may know by name and suggest when it is misspelled.
RETRY_KINDS = {
    "city", "country", "person", "product", "song", "artist", "movie", "book", "language",
    "company", "ingredient", "room", "device", "team", "airport", "cuisine", "dish", "username",
    "medication", "exercise", "plant", "station", "course", "file", "folder",
}  # fmt: skip
#: Codes a tool takes where people say the name they stand for: the error suggests the code.
SAID_AS_NAME = {
    "ticker": {"AAPL": "Apple", "MSFT": "Microsoft", "TSLA": "Tesla", "NVDA": "Nvidia",
               "AMZN": "Amazon", "GOOG": "Google"},
    "airport": {"JFK": "Kennedy", "LHR": "Heathrow", "CDG": "Charles de Gaulle",
                "NRT": "Narita", "SFO": "San Francisco", "FRA": "Frankfurt", "SIN": "Changi"},
}  # fmt: skip
#: Errors that name the value to try instead ({what}: the parameter, in words): each way of
#: saying "not known" with each way of suggesting, so that no one wording is learnt as the cue.
SUGGESTIONS = [
    unknown + hint
    for unknown in ("unknown {what} '{bad}'", "no {what} named '{bad}'", "'{bad}' not found",
                    "could not find '{bad}'", "{what} '{bad}' is not recognised")
    for hint in ("; did you mean '{good}'?", ". Did you mean '{good}'?", " (try '{good}')",
                 ". Closest match: '{good}'", "; the closest {what} is '{good}'")
]  # fmt: skip
#: Errors that offer nothing to try: the model says what went wrong.
DEAD_ENDS = [
    "unknown {what} '{bad}'",
    "no {what} named '{bad}'",
    "the {what} service is unreachable (network is down)",
    "'{bad}' not found",
    "rate limit exceeded, try again later",
]
GAVE_UP = ["Sorry, that didn't work: {error}.", "I couldn't do that: {error}.",
           "That failed: {error}."]  # fmt: skip


def misspelled(value: str, rng: random.Random) -> str:
    """The value as a hurried user types it: a letter dropped, doubled or swapped, or all in
    lower case."""
    letters = [i for i, c in enumerate(value) if c.isalpha()]
    if len(letters) < 4:
        return value
    how = rng.choice(["drop", "double", "swap", "lower"])
    i = rng.choice(letters[1:-1])
    if how == "lower" and value.lower() != value:
        return value.lower()
    if how == "double":
        return value[: i + 1] + value[i:]
    if how == "swap" and value[i + 1 : i + 2].isalpha() and value[i] != value[i + 1]:
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    return value[:i] + value[i + 1 :]


MASK_PREFIXES = ["func", "tool", "fn", "api", "op", "action"]


def mask_names(example: Example, rng: random.Random) -> Example:
    """The example with every tool renamed to a meaningless name (`fn_42`), in the tool list,
    the calls and the results (and the name an error starts with) alike; descriptions and
    arguments unchanged."""
    names: dict[str, str] = {}
    for tool in example.tools:
        while (new := f"{rng.choice(MASK_PREFIXES)}_{rng.randint(1, 999)}") in names.values():
            pass
        names[tool.name] = new
    tools = [Tool.from_schema(names[t.name], t.description, t.parameters) for t in example.tools]
    messages = [
        replace(
            m,
            calls=[replace(c, name=names.get(c.name, c.name)) for c in m.calls],
            name=names.get(m.name, m.name) if m.name else m.name,
            content=_renamed(m.content, names),
        )
        for m in example.messages
    ]
    return Example(tools, messages)


#: Units as people say them, for enums that hold their abbreviations.
UNIT_WORDS = {
    "mm": ["millimeters"], "cm": ["centimeters"], "m": ["meters", "metres"],
    "km": ["kilometers", "kilometres"], "in": ["inches"], "ft": ["feet"], "yd": ["yards"],
    "mi": ["miles"], "g": ["grams"], "kg": ["kilograms", "kilos"], "oz": ["ounces"],
    "lb": ["pounds", "lbs"], "ml": ["milliliters", "millilitres"], "l": ["liters", "litres"],
    "cup": ["cups"], "tbsp": ["tablespoons"], "tsp": ["teaspoons"], "gal": ["gallons"],
}  # fmt: skip

#: The dimension of each unit the bank's conversion tools take.
UNIT_DIMENSION = {
    unit: dimension
    for dimension, units in {
        "length": ("mm", "cm", "m", "km", "in", "ft", "yd", "mi", "miles"),
        "mass": ("g", "kg", "oz", "lb", "pounds"),
        "volume": ("ml", "l", "cup", "tbsp", "tsp", "gal", "liters", "gallons"),
        "temperature": ("celsius", "fahrenheit", "kelvin"),
    }.items()
    for unit in units
}

MONEY = ("amount", "price", "total", "principal", "budget", "cost")


def said_number(value: int | float, name: str = "", rng: random.Random | None = None) -> str:
    """A number of 1000 or more as people write it: "1,200"; money also "$1,200" and "$45k".
    Only money gets the "k": after data with "45k" for any number, a trial adapter read "a 1kg ice
    block" as a mass of 100 (docs/benchmarks.md, trial 2026-12-01 (4))."""
    rng = rng or random.Random(0)
    text = f"{value:,}"
    if name.endswith(MONEY) and rng.random() < 0.5:
        text = "$" + (f"{value / 1000:g}k" if value % 100 == 0 and rng.random() < 0.5 else text)
    return text


def _renamed(content: str, names: dict[str, str]) -> str:
    name = content.split(" failed: ", 1)[0]
    return names[name] + content[len(name) :] if name in names else content


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _key(call: ToolCall) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True)


def _say(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(value[:-1]) + " and " + value[-1] if len(value) > 1 else value[0]
    return value if isinstance(value, str) else json.dumps(value)


def synthesize_bank(
    bank: Sequence[BankTool],
    n: int,
    seed: int = 0,
    max_offered: int | None = 4,
    siblings: float = 0.0,
    missing: float = 0.25,
    masked: float = 0.0,
    same_tool: bool = False,
    numbers: float = 0.0,
    retries: float = 0.0,
) -> list[dict[str, Any]]:
    """n canonical examples over the bank's tools, deterministic for a seed."""
    synth = BankSynthesizer(
        bank, seed, max_offered, siblings, missing, masked, same_tool, numbers, retries
    )
    examples = synth.examples(n)
    return [example_to_dict(e) for e in examples]
