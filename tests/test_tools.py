"""@tool: signature + docstring -> pydantic model -> JSON Schema; validation; errors as results."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from edgeagent import Tool, tool
from edgeagent.errors import ToolDefinitionError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    city: str
    zip_code: str | None = None


def test_schema_types_defaults_and_descriptions():
    @tool
    def book(
        city: str,
        nights: int,
        budget: float = 100.0,
        pets: bool = False,
        room: Literal["single", "double"] = "double",
        color: Color = Color.RED,
        guests: list[str] | None = None,
        address: Address | None = None,
    ) -> str:
        """Book a hotel room.

        Args:
            city: where to stay
            nights: how many nights
        """
        return "ok"

    assert isinstance(book, Tool)
    assert book.name == "book"
    assert book.description == "Book a hotel room."
    p = book.parameters
    assert p["type"] == "object"
    assert p["additionalProperties"] is False
    assert p["required"] == ["city", "nights"]
    props = p["properties"]
    assert props["city"] == {"type": "string", "description": "where to stay"}
    assert props["nights"]["type"] == "integer"
    assert props["budget"] == {"type": "number", "default": 100.0}
    assert props["pets"] == {"type": "boolean", "default": False}
    assert props["room"]["enum"] == ["single", "double"]
    assert props["color"]["enum"] == ["red", "blue"]  # Enum inlined, no $ref
    assert {"type": "array", "items": {"type": "string"}} in props["guests"]["anyOf"]
    nested = props["address"]["anyOf"][0]
    assert nested["properties"]["city"] == {"type": "string"}
    assert nested["additionalProperties"] is False
    assert "$defs" not in p and "title" not in str(p.get("title", ""))


def test_validation_and_invocation():
    @tool
    def add(a: int, b: int = 1) -> int:
        """Add two numbers."""
        return a + b

    assert add(2, 3) == 5  # still callable as a function
    out = add.invoke({"a": 4})
    assert out.ok and out.content == "5"
    bad = add.invoke({"a": "four"})
    assert not bad.ok and "a:" in bad.content and "integer" in bad.content
    extra = add.invoke({"a": 1, "c": 2})
    assert not extra.ok and "c:" in extra.content


def test_tool_exception_becomes_result():
    @tool
    def explode(x: int) -> str:
        """Always fails."""
        raise RuntimeError(f"boom {x}")

    out = explode.invoke({"x": 3})
    assert not out.ok
    assert out.content == "explode failed: RuntimeError: boom 3"


def test_result_is_capped():
    @tool
    def big() -> str:
        """Returns a lot."""
        return "x" * 5000

    out = big.invoke({}, max_chars=100)
    assert out.content.startswith("x" * 100) and "4900 more characters" in out.content


def test_enum_and_nested_model_arguments_are_parsed():
    @tool
    def paint(color: Color, where: Address) -> str:
        """Paint."""
        assert isinstance(color, Color) and isinstance(where, Address)
        return f"{color.value} in {where.city}"

    assert paint.invoke({"color": "blue", "where": {"city": "Oslo"}}).content == "blue in Oslo"


def test_options_and_effects():
    @tool(name="timer", effects="write", description="Start a timer.")
    def set_timer(minutes: Annotated[int, Field(ge=1, le=60)]) -> str:
        return str(minutes)

    assert (set_timer.name, set_timer.effects, set_timer.description) == (
        "timer",
        "write",
        "Start a timer.",
    )
    assert set_timer.parameters["properties"]["minutes"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 60,
    }


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f(x): 'doc'", "has no type annotation"),
        ("def f(*args: int): 'doc'", "*args and **kwargs"),
        ("def f(**kw: int): 'doc'", "*args and **kwargs"),
        ("def f(x: int, /): 'doc'", "positional-only"),
        ("class C: pass\ndef f(x: C): 'doc'", "unsupported argument type"),
    ],
)
def test_unsupported_signatures_are_refused(source, message):
    namespace: dict = {}
    exec(source, namespace)
    with pytest.raises(ToolDefinitionError, match=message.replace("*", r"\*")):
        tool(namespace["f"])


class Tree(BaseModel):
    children: list[Tree] = []


def test_recursive_model_is_refused():
    def grow(tree: Tree) -> str:
        """Grow."""
        return ""

    with pytest.raises(ToolDefinitionError, match="recursive"):
        tool(grow)


def test_schema_only_tool_validates_with_json_schema():
    params = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"],
        "additionalProperties": False,
    }
    weather = Tool.from_schema(
        "weather.get", "Get the weather.", params, fn=lambda city, days=1: f"{city}:{days}"
    )
    assert weather.invoke({"city": "Oslo", "days": 2}).content == "Oslo:2"
    bad = weather.invoke({"days": 0})
    assert (
        not bad.ok and "'city' is a required property" in bad.content and "minimum" in bad.content
    )
    no_fn = Tool.from_schema("t", "d", params)
    assert "has no implementation" in no_fn.invoke({"city": "x"}).content


def test_bfcl_schema_dialect_is_translated():
    from edgeagent.bfcl import to_json_schema

    bfcl = {
        "type": "dict",
        "properties": {
            "type": {"type": "string", "enum": ["a", "b"]},  # a parameter named "type"
            "ratio": {"type": "float"},
            "point": {"type": "tuple", "items": {"type": "integer"}},
            "extra": {"type": "any"},
            "opts": {"type": "dict", "properties": {"n": {"type": "long"}}},
        },
        "required": ["type", "missing"],
    }
    out = to_json_schema(bfcl)
    assert out["type"] == "object" and out["additionalProperties"] is False
    props = out["properties"]
    assert props["type"] == {"type": "string", "enum": ["a", "b"]}
    assert props["ratio"] == {"type": "number"}
    assert props["point"] == {"type": "array", "items": {"type": "integer"}}
    assert props["extra"] == {}
    assert props["opts"]["properties"]["n"] == {"type": "integer"}
    assert out["required"] == ["type"]  # names that are not parameters are dropped


def test_the_demo_unit_converter_handles_scales_and_temperature_offsets():
    from edgeagent.demo_tools import convert_units

    assert convert_units.fn(3, "cup", "ml") == "3 cup = 709.765 ml"
    assert convert_units.fn(212, "fahrenheit", "celsius") == "212 fahrenheit = 100 celsius"
    assert convert_units.fn(0, "celsius", "kelvin") == "0 celsius = 273.15 kelvin"
    with pytest.raises(ValueError, match="cannot convert mass"):
        convert_units.fn(1, "kg", "ml")
    # units said in words are admitted and computed as their abbreviations
    assert convert_units.fn(5, "miles", "km") == "5 miles = 8.04672 km"
    assert convert_units.invoke({"value": 2, "from_unit": "pounds", "to_unit": "g"}).ok
    # "c" was a unit, and the grammar let "3 cups" end at it; temperatures are spelled out
    units = convert_units.parameters["properties"]["from_unit"]["enum"]
    assert "c" not in units and "cup" in units


def test_the_demo_calculator_computes_and_names_what_it_refuses():
    from edgeagent.demo_tools import calculate

    assert calculate.invoke({"expression": "(12 + 3) * 4 / 5"}).content == "(12 + 3) * 4 / 5 = 12"
    assert calculate.invoke({"expression": "2 ** 10 - 17 % 5"}).content == "2 ** 10 - 17 % 5 = 1022"
    for expression, reason in [
        ("18 +", "invalid syntax"),
        ("__import__('os')", "not Call"),
        ("1 / 0", "division by zero"),
        ("(-8) ** 0.5", "not a real number"),
    ]:
        outcome = calculate.invoke({"expression": expression})
        assert not outcome.ok and reason in outcome.error, (expression, outcome.error)


def test_the_demo_calculator_reads_percentages_and_keeps_the_remainder():
    from edgeagent.demo_tools import calculate

    for expression, result in [("18% of 240", "43.2"), ("240 * 18%", "43.2"), ("18%", "0.18"),
                               ("12.5% OF 80", "10"), ("17 % 5", "2"), ("18 % (5)", "3")]:  # fmt: skip
        assert calculate.invoke({"expression": expression}).content == f"{expression} = {result}"


def test_the_demo_calculator_reads_operators_written_in_words():
    from edgeagent.demo_tools import calculate

    for expression, result in [("2 to the power of 10", "1024"), ("144 divided by 12", "12"),
                               ("20 percent of 55", "11"), ("3 Times 4 plus 1", "13"),
                               ("10 minus 4 multiplied by 2", "2")]:  # fmt: skip
        assert calculate.invoke({"expression": expression}).content == f"{expression} = {result}"
    # words that are not operators are still refused, by name
    assert "invalid syntax" in calculate.invoke({"expression": "2 timesx 3"}).error


def test_the_demo_calculator_refuses_huge_numbers_before_computing_them():
    """Big-integer powers hold the GIL, so a tool timeout cannot stop them: they must fail fast.
    Run in a subprocess so that a regression fails at the hang guard instead of hanging pytest."""
    import subprocess
    import sys

    script = (
        "from edgeagent.demo_tools import calculate\n"
        "for e in ['(((9**99)**99)**99)**99', '9**9**9', '(10**300) * (10**300) * (10**300)',\n"
        "          '2.0 ** 99999', '7 ** 5000 % 3', '-1 ** 10**200']:\n"
        "    o = calculate.invoke({'expression': e})\n"
        "    print(e, o.ok, o.error)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 6, proc.stderr
    assert all(" False " in line for line in lines[:5]), lines
    refused = "the number is too large (more than 1000 bits)"  # ours, before computing
    assert all(refused in lines[i] for i in (0, 1, 2, 4)), lines
    assert "Overflow" in lines[3]
    assert lines[5] == "-1 ** 10**200 True None"  # -(1 ** 10**200): small, allowed
