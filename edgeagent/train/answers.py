"""Examples that teach an answer adapter to state what the tools returned.

Each example is a bank request and its calls (edgeagent.train.toolbank), a result for every call
in one of the shapes tools return (a sentence, a number, an object, a list of items, nothing, an
error, a call the user declined) and an answer that states it in a sentence or two: every value
with its label, "no ..." for nothing, the error's message, what was not run. Trained with the
"answer" mask, the adapter sees the results as the agent shows them to the answering model
(`wireformat.answer_view`: folded into the request, no tool schemas) and learns the answer only.

The values are made up and the answers templated on purpose: what the adapter should learn is
to copy the values it reads into a short sentence, which a 135M base model does not do reliably
(it wrote code, restated the request or invented numbers). The demo tools are left out, so that
the answers check (edgeagent.evaluation.answers, mostly demo tools' real results) stays held out.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from edgeagent.tools import format_result
from edgeagent.train.data import Example, example_to_dict
from edgeagent.train.toolbank import POOLS, BankSynthesizer, BankTool
from edgeagent.wireformat import Message, ToolCall

#: result shapes and their shares
SHAPES = ["object"] * 34 + ["sentence"] * 16 + ["list"] * 14 + ["number"] * 8 + [
    "empty"] * 10 + ["error"] * 10 + ["declined"] * 8  # fmt: skip

#: output fields a tool may return: name -> a value maker. Units stay in the name (`_c`, `_km`)
#: and are said as the name says them ("the distance km is 3.2"): a trial that turned them into
#: units taught the adapter to add units of its own ("the disk free is 41.3 MB" for disk_free_gb)
FIELDS: dict[str, Callable[[random.Random], Any]] = {
    "status": lambda r: r.choice(
        [
            "ok",
            "done",
            "scheduled",
            "delivered",
            "in transit",
            "pending",
            "open",
            "closed",
            "confirmed",
            "on time",
        ]
    ),
    "temperature_c": lambda r: r.choice([-3, 4, 9, 12.5, 18, 21, 27, 33]),
    "price": lambda r: round(r.uniform(1, 900), 2),
    "total": lambda r: round(r.uniform(5, 2500), 2),
    "count": lambda r: r.randint(0, 40),
    "percent": lambda r: r.randint(1, 100),
    "distance_km": lambda r: round(r.uniform(0.2, 950), 1),
    "duration_min": lambda r: r.randint(2, 300),
    "time": lambda r: r.choice(POOLS["time"]),
    "date": lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    "name": lambda r: r.choice(POOLS["person"] + POOLS["company"] + POOLS["title"]),
    "place": lambda r: r.choice(POOLS["city"] + POOLS["address"] + POOLS["station"]),
    "id": lambda r: f"{r.choice('ABCKRXZ')}{r.randint(100, 99999)}",
    "rating": lambda r: round(r.uniform(2.5, 5), 1),
    "level": lambda r: r.choice(["low", "moderate", "high", "very high", "good", "poor"]),
    "speed_kmh": lambda r: r.randint(5, 130),
    "size_mb": lambda r: round(r.uniform(0.1, 4000), 1),
    "note": lambda r: r.choice(POOLS["text"]),
}
SENTENCES = [
    "{Thing} saved as {id}.", "{Thing} is set for {time} on {date}.", "Sent to {name}.",
    "{Thing} updated: {status}.", "Found {count} {things}.", "{Thing} {id} is {status}.",
    "Booked for {time}; confirmation {id}.", "{Thing} done, {count} {things} changed.",
]  # fmt: skip
ERRORS = [
    ("ValueError", "unknown {arg}: {value}"), ("LookupError", "no {thing} named {value}"),
    ("ValueError", "invalid {arg}: {value}"), ("ConnectionError", "the service is unreachable"),
    ("PermissionError", "not allowed for this account"), ("TimeoutError", "no answer in time"),
]  # fmt: skip


def synthesize_answers(bank: Sequence[BankTool], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n canonical examples (request, calls, results, answer), deterministic for a seed. The
    demo tools are left out (see the module's text)."""
    bank = [b for b in bank if b.domain != "demo"]
    if not bank:
        raise ValueError("no tools to write answers for (the demo tools are left out)")
    calls = BankSynthesizer(bank, seed, max_offered=4, missing=0.0)
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        kind = rng.choice(["single"] * 8 + ["parallel", "parallel_same"])
        example = calls.example(kind)
        ask, reply = example.messages[0], example.messages[1]
        if not reply.calls:
            continue
        results, answers = [], []
        for call in reply.calls:
            content, said = result_and_answer(call, rng)
            results.append(Message("tool", content, name=call.name))
            answers.append(said)
        answer = Message("assistant", " ".join(answers))
        out.append(example_to_dict(Example(example.tools, [ask, reply, *results, answer])))
    return out


def result_and_answer(call: ToolCall, rng: random.Random) -> tuple[str, str]:
    """A result's content, as the runtime gives it to the model, and its answer."""
    thing = _thing(call.name)
    shape = rng.choice(SHAPES)
    if shape == "error":
        exc, message = rng.choice(ERRORS)
        arg, value = _an_argument(call, rng)
        message = message.format(arg=arg.replace("_", " "), value=value, thing=thing)
        content = f"{call.name} failed: {exc}: {message}"
        answer = rng.choice(["There was an error: {m}.", "Sorry, that failed with an error: {m}.",
                             "I couldn't do it: {m}."])  # fmt: skip
        return content, answer.format(m=message)
    if shape == "declined":
        if rng.random() < 0.5:
            return (f"The user declined to run {call.name}.",
                    f"I did not run {call.name}: you declined it.")  # fmt: skip
        return (  # as edgeagent.agent words a refusal
            f"{call.name} was not run: it has side effects (write) and this agent has no way "
            "to ask the user (give it confirm= or allow=).",
            f"I did not run {call.name}: it changes things and needs your permission first.",
        )
    if shape == "empty":
        content = format_result(rng.choice([[], {}, None, ""]))
        answer = rng.choice(["I found no {t} for that.", "There are no {t} matching that.",
                             "No {t} found."])  # fmt: skip
        return content, answer.format(t=_plural(thing))
    if shape == "number":
        number: float = rng.choice([rng.randint(2, 5000), round(rng.uniform(0.01, 999), 2)])
        label = _an_argument(call, rng)[1]
        return format_result(number), rng.choice([
            f"The result is {number}.", f"It is {number}.", f"For {label}: {number}."])  # fmt: skip
    if shape == "sentence":
        values = {k: f(rng) for k, f in FIELDS.items()}
        values |= {"Thing": thing.capitalize(), "thing": thing, "things": _plural(thing)}
        text = rng.choice(SENTENCES).format(**values)
        return text, text
    if shape == "list":
        keys = rng.sample(list(FIELDS), rng.randint(1, 2))
        items = [{k: FIELDS[k](rng) for k in keys} for _ in range(rng.randint(1, 3))]
        if len(keys) == 1:
            items = [item[keys[0]] for item in items]
        said = [_say_item(i) for i in items]
        return format_result(items), f"I found {len(items)}: {_join(said)}."
    # an object: one or two of the call's values, then what the tool found
    keys = rng.sample(list(FIELDS), rng.randint(1, 3))
    echoed = dict(rng.sample(sorted(call.arguments.items()), min(1, len(call.arguments))))
    obj = {**{k: v for k, v in echoed.items() if isinstance(v, str | int | float)},
           **{k: FIELDS[k](rng) for k in keys}}  # fmt: skip
    return format_result(obj), _say_object(obj)


def _say_object(obj: dict[str, Any]) -> str:
    parts = [f"the {_label(k)} is {_value(k, v)}" for k, v in obj.items()]
    sentence = _join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def _say_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    first, *rest = item.items()
    extra = ", ".join(f"{_label(k)} {_value(k, v)}" for k, v in rest)
    return f"{_value(*first)} ({extra})" if extra else _value(*first)


def _label(key: str) -> str:
    return key.replace("_", " ")


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _an_argument(call: ToolCall, rng: random.Random) -> tuple[str, str]:
    if not call.arguments:
        return "request", call.name.replace("_", " ")
    key = rng.choice(sorted(call.arguments))
    return key, str(call.arguments[key])


def _thing(tool_name: str) -> str:
    """What a tool deals in, from its name: get_weather -> weather, list_events -> event."""
    word = tool_name.split("_")[-1]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _plural(word: str) -> str:
    return word if word.endswith(("s", "weather", "info", "data")) else word + "s"
