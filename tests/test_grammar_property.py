"""Property tests: whatever the tool-call grammar admits parses and validates.

Hypothesis draws tool signatures of the kinds @tool accepts, builds the wire-format grammar, and
derives random strings from that grammar (tests/gbnf.py). Every derived string must parse as an
answer or as calls whose arguments pass the tool's own pydantic validation.
"""

from __future__ import annotations

import enum
import inspect
import json
import math
from typing import Annotated, Any, Literal, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from edgeagent.grammar import _int_range, schema_rules
from edgeagent.tools import make_tool
from edgeagent.wireformat import CALL_OPEN, build_grammar, parse_reply
from tests.gbnf import generate, matches, parse_gbnf

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad ü"


class Point(BaseModel):
    x: float
    y: Annotated[int, Field(ge=-3, le=3)] = 0
    tag: str | None = None


words = st.text(alphabet='abcxyz _-é"\\', min_size=1, max_size=6)


@st.composite
def annotations(draw: Any) -> Any:
    lo = draw(st.integers(-150, 150))
    span = draw(st.integers(0, 2000))
    kinds = [
        str,
        int,
        float,
        bool,
        Mood,
        Point,
        list[int],
        list[str],
        Optional[int],  # noqa: UP045 (kept as written by users)
        dict[str, int],
        Annotated[int, Field(ge=lo, le=lo + span)],
        Annotated[int, Field(gt=lo)],
        Annotated[int, Field(lt=lo)],
        Annotated[float, Field(ge=lo, le=lo + span)],
        Annotated[float, Field(ge=0)],
        Annotated[float, Field(gt=lo, lt=lo + span + 2)],
        Annotated[str, Field(max_length=draw(st.integers(1, 20)))],
        Annotated[str, Field(min_length=1, max_length=8)],
        Annotated[list[bool], Field(min_length=1, max_length=3)],
    ]
    choice = draw(st.sampled_from(kinds + ["literal"]))
    if choice == "literal":
        values = draw(st.lists(words, min_size=1, max_size=3, unique=True))
        return Literal[tuple(values)]  # type: ignore[valid-type]
    return choice


@st.composite
def tools(draw: Any, index: int = 0) -> Any:
    n = draw(st.integers(0, 4))
    params = []
    for i in range(n):
        ann = draw(annotations())
        optional = draw(st.booleans())
        default = inspect.Parameter.empty
        if optional:
            default = None
            ann = Optional[ann]  # noqa: UP045
        params.append(
            inspect.Parameter(
                f"arg_{i}", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann
            )
        )
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)

    def fn(**kwargs: Any) -> Any:
        return kwargs

    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params}
    fn.__doc__ = "A generated tool."
    return make_tool(fn, name=f"tool_{index}")


def check_reply(text: str, offered: list) -> None:
    reply = parse_reply(text, offered)
    assert not reply.problems, (text, reply.problems)
    if not text.startswith(CALL_OPEN):
        assert reply.text and not reply.calls
        return
    assert len(reply.calls) + reply.duplicates_dropped >= 1
    by_name = {t.name: t for t in offered}
    for call in reply.calls:
        model = by_name[call.name].validate(call.arguments)  # raises if the grammar let it through
        # Arguments survive a JSON round trip (no infinities, no lone surrogates).
        dumped = json.dumps(call.arguments, ensure_ascii=False, allow_nan=False)
        dumped.encode("utf-8")
        assert model is not None


@EXAMPLES
@given(data=st.data(), t0=tools(index=0), t1=tools(index=1), max_calls=st.integers(1, 3))
def test_everything_the_grammar_admits_parses_and_validates(data, t0, t1, max_calls):
    offered = [t0, t1]
    rules = parse_gbnf(build_grammar(offered, max_calls=max_calls, max_string_chars=12))
    for _ in range(3):
        check_reply(generate(data, rules), offered)


@EXAMPLES
@given(data=st.data(), t0=tools(index=0))
def test_calls_only_grammar_admits_no_answer(data, t0):
    rules = parse_gbnf(build_grammar([t0], allow_answer=False))
    text = generate(data, rules)
    assert text.startswith(CALL_OPEN)
    check_reply(text, [t0])


@settings(max_examples=300, deadline=None)
@given(
    lo=st.integers(-(10**6), 10**6),
    span=st.integers(0, 10**6),
    probe=st.integers(-3 * 10**6, 3 * 10**6),
)
def test_integer_ranges_are_exact(lo, span, probe):
    hi = lo + span
    rules = parse_gbnf(f"root ::= {_int_range(lo, hi)}")
    for value in (lo, hi, lo - 1, hi + 1, probe, (lo + hi) // 2):
        assert matches(rules, str(value)) == (lo <= value <= hi), value
    assert not matches(rules, "-0") and not matches(rules, "007")


def test_strings_are_bounded_and_json_safe():
    rules = parse_gbnf("root ::= r\n" + schema_rules({"r": {"type": "string"}}, max_string_chars=5))
    assert matches(rules, '"abcde"')
    assert not matches(rules, '"abcdef"')  # the cap
    assert not matches(rules, '"a\nb"')  # raw control characters are not JSON
    assert matches(rules, '"a\\nb"')  # escaped ones are
    assert not matches(rules, '"\\ud800"')  # no \u escapes: no lone surrogates


def test_patterns_with_class_escapes_and_escaped_literals_mean_what_the_regex_means(
    llama_backend,
):
    schema = {"type": "string", "pattern": r"^\d{3}-\w\s?[\d_]\S\.txt$"}
    text = schema_rules({"r": schema}, max_string_chars=32)
    llama_backend.check_grammar("root ::= r\n" + text)  # llama.cpp refused \\d and \\. before
    rules = parse_gbnf("root ::= r\n" + text)
    for value, ok in [
        ("555-a 1x.txt", True),
        ("555-a_1x.txt", False),
        ("55a-a 1x.txt", False),
        ("555-a1_.txt", True),
        ("555-a 1 .txt", False),
        ("555-a 1xatxt", False),
    ]:
        assert matches(rules, json.dumps(value)) == ok, value


def test_a_schema_without_a_type_admits_any_json_value_with_bounded_strings(llama_backend):
    """JSON Schema's {} (and BFCL's "any", which becomes a description alone) admits every
    value: the grammar must too, and llama.cpp must take it (it used to end `eval --bfcl`)."""
    schema = {"type": "object", "properties": {"v": {"description": "any"}, "w": {}}}
    text = schema_rules({"r": schema}, max_string_chars=5)
    llama_backend.check_grammar("root ::= r\n" + text)
    rules = parse_gbnf("root ::= r\n" + text)
    for value in ["abc", 3, -2.5, True, None, [1, "a", [None]], {"k": {"j": [False]}}]:
        assert matches(rules, json.dumps({"v": value, "w": value})), value
    assert not matches(rules, json.dumps({"v": "abcdef"}))  # strings stay capped inside
    assert not matches(rules, json.dumps({"v": {"abcdef": 1}}))  # keys too
    assert not matches(rules, '{"v": 1e999}')
    # data that looks like a schema is not rewritten: an enum of objects keeps its values
    enum = {"enum": [{"type": "string"}, {"description": "x"}]}
    rules = parse_gbnf("root ::= r\n" + schema_rules({"r": enum}, max_string_chars=5))
    assert matches(rules, '{"type": "string"}') and not matches(rules, '"abc"')


def test_numbers_have_no_exponent():
    rules = parse_gbnf("root ::= number\n" + schema_rules({"r": {"type": "number"}}, 8))
    assert matches(rules, "-12.5")
    assert not matches(rules, "1e999")
    assert math.isfinite(float("9" * 16 + "." + "9" * 16))


def test_answer_cannot_start_like_a_call_or_with_space():
    t = make_tool(lambda: None, name="noop")
    rules = parse_gbnf(build_grammar([t]))
    assert matches(rules, "Hello <b>there</b>")
    assert not matches(rules, "<tool_call")
    assert not matches(rules, " Hello")
    assert matches(rules, '<tool_call>[{"name": "noop", "arguments": {}}]</tool_call>')
    assert not matches(rules, '<tool_call>[{"name": "other", "arguments": {}}]</tool_call>')


def test_an_answer_never_writes_the_call_tag():
    """A model once wrote prose, then '<tool_call>[...]': the parser took the unchecked text for
    a call. Under the grammar, an answer cannot contain the tag."""
    t = make_tool(lambda: None, name="noop")
    rules = parse_gbnf(build_grammar([t]))
    call = '<tool_call>[{"name": "noop", "arguments": {}}]</tool_call>'
    assert not matches(rules, "I can do that:\n" + call)
    assert not matches(rules, "a <<tool_call>")
    assert matches(rules, "2 < 3 and x<y, ends with <")


@EXAMPLES
@given(data=st.data())
def test_answers_the_grammar_admits_hold_no_call_tag(data):
    rules = parse_gbnf(build_grammar([make_tool(lambda: None, name="noop")]))
    text = generate(data, rules, start="answer")
    assert CALL_OPEN not in text and parse_reply(text, []).calls == []
