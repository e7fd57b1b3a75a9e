"""Whether a call's new values come from the user's request.

A small model asked for several things writes its first call and stops, or writes the first
call again. The agent can ask it for one more call (edgeagent.replies.propose_calls, steered off
copies of the calls it has), but asked that, the model writes one whatever the request: a
second BMI for "the BMI of a person 6 ft tall and 80 kg" with made-up figures. So a proposed
call is kept only where every value it does not share with an earlier call of the same tool is
said in the request (as words, or as a number), in a part of it no earlier call's value has
taken: "factorial of 5, 10 and 15" grounds factorial(10) after factorial(5); "the field for
charge 2 at distance 3" does not ground charge 3 (the one "3" is the first call's distance),
nor does "Translate 'Hello, how are you?'" ground a sentiment_analysis("How are you?") beside
the translation (that part of the request is the translation's text); an earlier value the
request does not say whole takes its words ("*.pdf" takes the "pdf" of "the pdf files").
Booleans and nulls are not looked for (a request rarely says them), but a call whose only new
values are those is not kept, nor a call with no arguments: asked for one more, the model
proposed `list_timers()` beside a timer (the demo tools), and nothing in a request can ground
an empty call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from edgeagent.wireformat import ToolCall

Scalar = str | int | float

#: a comma between digits ("1,200"): a request writes thousands so, a call writes 1200
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def scalars(value: Any) -> list[Scalar]:
    """The strings and numbers in a value (lists and objects looked into; bool and None left
    out)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, str | int | float):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in scalars(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in scalars(item)]
    return []


def said(value: Scalar, request: str) -> int:
    """How many times the request says this value: a string as words of it (any case), a number
    as its digits, not inside a longer number."""
    return len(_pattern(value).findall(_THOUSANDS.sub("", request)))


def new_values(call: ToolCall, earlier: Sequence[ToolCall]) -> list[Scalar]:
    """The values of `call` that no earlier call of the same tool has at the same parameter."""
    same = [c for c in earlier if c.name == call.name]
    return [
        s
        for name, value in call.arguments.items()
        if not any(c.arguments.get(name) == value for c in same)
        for s in scalars(value)
    ]


def grounded(call: ToolCall, earlier: Sequence[ToolCall], request: str) -> bool:
    """Whether the request asks for `call` beside the `earlier` ones (see the module's text)."""
    if not new_values(call, earlier):
        return False  # a copy, new only in what a request cannot say, or no arguments at all
    return not unsaid(call, earlier, request)


def unsaid(call: ToolCall, earlier: Sequence[ToolCall], request: str) -> list[Scalar]:
    """The new values of `call` not said in a part of the request that no earlier call's value
    (nor another new value) has taken. A call still being written can be checked: a value it
    has written in full stays unsaid whatever follows."""
    rest = _THOUSANDS.sub("", request)
    taken = [s for c in earlier for s in scalars(c.arguments)]
    for value in sorted(taken, key=lambda v: -len(str(v))):  # "Hello, how are you?" first
        rest, found = _pattern(value).subn(" ", rest, count=1)
        if not found and isinstance(value, str):  # "*.pdf" for "the pdf files": its words
            for word in re.findall(r"\w+", value):
                rest = _pattern(word).sub(" ", rest, count=1)
    missing = []
    for value in new_values(call, earlier):
        rest, found = _pattern(value).subn(" ", rest, count=1)
        if not found:
            missing.append(value)
    return missing


def _pattern(value: Scalar) -> re.Pattern[str]:
    if isinstance(value, str):
        value = value.strip() or "\0"  # an empty string is said nowhere
        left = r"\b" if value[0].isalnum() else ""
        right = r"\b" if value[-1].isalnum() else ""
        return re.compile(left + re.escape(value) + right, re.IGNORECASE)
    forms = {repr(value)}
    if isinstance(value, float) and value.is_integer():
        forms.add(str(int(value)))
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(r"(?<![\d.])(?:" + alternatives + r")(?!\d|\.\d)")
