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

A proposal is written with values the request says (`said_values`, which the agent turns into
its grammar), so the grounding also turns away what such values make possible: a call that
only adds an argument to an earlier call of the same tool (a refinement, not a second thing),
a value that is the field's own name (`function="function"`), and a second value for a field
that the request does not join to the first ("5 and 12", "Berlin, Madrid", "then repeat with
10" join; "a gas-powered vehicle driving 1500 miles" says "driving", but as no second type).
"""

from __future__ import annotations

import json
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
    new = new_values(call, earlier)
    if not new:
        return False  # a copy, new only in what a request cannot say, or no arguments at all
    if any(c.name == call.name and c.arguments.items() <= call.arguments.items() for c in earlier):
        return False  # an earlier call with more arguments: get_directions(Sydney, Melbourne)
        # and then the same with route_type="fastest" for "using the fastest route"
    fields = {w.lower() for n in (call.name, *call.arguments) for w in _NAME_WORD.findall(n)}
    if any(isinstance(v, str) and v.lower() in fields for v in new):
        return False  # the request's word for the field, not a value: function="function"
    if not all(_coordinated(c.arguments[k], v, request) for c in earlier if c.name == call.name
               for k, v in call.arguments.items() if k in c.arguments):  # fmt: skip
        return False
    return not unsaid(call, earlier, request)


#: what joins two values asked for alike: "5 and 12", "Berlin, Madrid", "then repeat with 10"
_JOINED = re.compile(
    r"\b(?:and|or|also|then|another|other|both|each|vs|versus|second|third|next|finally)\b|[,;&/]",
    re.IGNORECASE,
)


def _coordinated(earlier: Any, value: Any, request: str) -> bool:
    """Whether two values of one field, where the request says both, are joined as things asked
    for alike: "gas-powered vehicle driving 1500 miles" said "driving" beside "gas", but as
    no second vehicle type."""
    pair = scalars(earlier)[:1] + scalars(value)[:1]
    if earlier == value or len(pair) < 2:
        return True
    text = _THOUSANDS.sub("", request)
    said_as = [list(_pattern(v).finditer(text)) for v in pair]
    if not all(said_as):
        return True  # one of them is not said as written: nothing to tell by
    return any(
        _JOINED.search(text[min(a.end(), b.end()) : max(a.start(), b.start())])
        for a in said_as[0]
        for b in said_as[1]
    )  # "from Sydney to Melbourne and back from Melbourne to Sydney": some two are joined


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


#: a word of a tool's or a parameter's name: snake_case, dotted.names, camelCase
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
#: words a value taken from the request neither starts nor ends with ("my Bluetooth speaker")
_EDGE_WORDS = {
    "I", "a", "an", "and", "are", "at", "be", "by", "can", "for", "from", "in", "is", "it", "me",
    "my", "of", "on", "or", "the", "to", "with", "you", "your",
}  # fmt: skip
#: a word of a request: letters and digits, joined by an inner ' . : / or - ("7:30", "e-mail")
_WORD = re.compile(r"[^\W_]+(?:['’.:/-][^\W_]+)*")
#: a quoted part of a request, whole: 'Hello, World!'
_QUOTED = re.compile(r"(?<!\w)['\"‘“`]([^'\"‘’“”`]+)['\"’”`](?!\w)")
#: a number of a request, with its sign where a minus stands right before it
_NUMBER = re.compile(r"(?<![\w.])(-?)(\d+(?:\.\d+)?)(?![\d.]\d)")
#: the longest span of a request (in words) offered as a string value
SPAN_WORDS = 6


def said_values(
    request: str, earlier: Sequence[ToolCall], max_chars: int
) -> tuple[list[str], list[str]]:
    """The strings and numbers (JSON literals) a call beside `earlier` can take from the
    request: every span of up to SPAN_WORDS of its words as written, every number it says, and
    the earlier calls' own values. A proposal written under these
    (grammar.restrict_values) chooses among what was said instead of making a value up."""
    words = list(_WORD.finditer(request))
    strings = {
        request[w.start() : words[j].end()]
        for i, w in enumerate(words)
        if w[0] not in _EDGE_WORDS
        for j in range(i, min(i + SPAN_WORDS, len(words)))
        if words[j][0] not in _EDGE_WORDS and words[j].end() - w.start() <= max_chars
    }
    strings.update(q for q in _QUOTED.findall(request) if len(q) <= max_chars)
    numbers: set[str] = set()
    for sign, digits in _NUMBER.findall(_THOUSANDS.sub("", request)):
        whole, point, fraction = digits.partition(".")
        literal = (whole.lstrip("0") or "0") + point + fraction  # JSON: no leading zeros
        numbers.update({literal, sign + literal} if literal != "0" else {literal})
    for value in (s for c in earlier for s in scalars(c.arguments)):
        if isinstance(value, str):
            strings.add(value)
        else:
            numbers.add(json.dumps(value))
    return sorted(strings), sorted(numbers)


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
