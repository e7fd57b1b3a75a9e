"""JSON Schema -> GBNF for llama.cpp, on top of llama-cpp-python's own converter.

The library's converter does most of the work (objects, enums, arrays, unions, formats). We fix
what makes it unsafe for tool arguments, each checked by the property test in
tests/test_grammar_property.py:

* strings are bounded: every string without `maxLength` gets one (a 135M model otherwise rambles
  inside a free string until it runs out of tokens);
* string characters exclude raw control characters and `\\u` escapes (the library admits a raw
  newline inside a string, which is not JSON, and lone surrogates, which are not text);
* literals (enum and const values, property names) escape backslashes: the library's Python
  port does not, so a value containing `\\` or `\"` broke the grammar;
* numbers have no exponent and at most 16 digits each side (the library admits `1e999`, which
  parses as infinity);
* integer `minimum`/`maximum` (and the exclusive forms) are enforced by the grammar, which the
  library ignores; number bounds are enforced for the integral part where that is sound.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from edgeagent.errors import GrammarError

#: Strings without their own maxLength are capped at this many characters.
DEFAULT_MAX_STRING_CHARS = 128

# Rules that replace the converter's primitives of the same name.
_SAFE_PRIMITIVES = {
    "char": r'[^"\\\x00-\x1F\x7F] | "\\" ["\\/bfnrt]',
    "integral-part": r'"0" | [1-9] [0-9]{0,15}',
    "decimal-part": r"[0-9]{1,16}",
    "number": r'"-"? integral-part ("." decimal-part)? space',
    "integer": r'"-"? integral-part space',
}

_MAX_ABS = 10**16 - 1  # the largest integer the grammar writes (16 digits)


def schema_rules(schemas: dict[str, dict[str, Any]], max_string_chars: int) -> str:
    """GBNF rules for several JSON Schemas at once: `{rule_name: schema}` -> grammar text in which
    each `rule_name` matches exactly the JSON documents its schema admits (without a root rule)."""
    SchemaConverter = _converter_module().SchemaConverter

    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    converter._format_literal = gbnf_literal  # type: ignore[method-assign]
    for rule_name, schema in schemas.items():
        ranges: dict[str, str] = {}
        prepared = _prepare(copy.deepcopy(schema), max_string_chars, ranges, rule_name)
        # Bounded numbers become references to rules we write ourselves (see _prepare).
        prepared.setdefault("$defs", {}).update({name: {} for name in ranges})
        converter._rules.update(ranges)  # the converter keeps its rules in this dict
        try:
            resolved = converter.resolve_refs(prepared, "")
            converter.visit(resolved, rule_name)
        except (AssertionError, AttributeError, KeyError, ValueError, TypeError,
                NotImplementedError) as exc:  # fmt: skip
            raise GrammarError(
                f"cannot build a grammar for {rule_name}: unsupported schema construct ({exc})",
                hint="use types, enums, arrays and objects that JSON Schema can state",
            ) from None
    for name in list(converter._rules):
        if name in _SAFE_PRIMITIVES:
            converter._rules[name] = _SAFE_PRIMITIVES[name]
    if "string" in converter._rules:  # inside any-value rules (and object keys there): bounded
        converter._rules["string"] = f'"\\"" char{{0,{max_string_chars}}} "\\"" space'
    return str(converter.format_grammar())


def json_grammar(schema: dict[str, Any], max_string_chars: int = DEFAULT_MAX_STRING_CHARS) -> str:
    """A grammar whose documents are exactly the JSON values `schema` admits (a structured
    answer: response_format's json_schema)."""
    rules = schema_rules({"json-answer": schema}, max_string_chars)
    if "\njson-answer ::=" not in "\n" + rules:  # the converter inlined a bare primitive
        rules = schema_rules({"json-answer": {"type": "object", "properties": {
            "value": schema}, "required": ["value"]}}, max_string_chars)  # fmt: skip
    return f"root ::= json-answer\n{rules}"


def converter_available() -> bool:
    """Whether llama-cpp-python's JSON-Schema converter can be imported here."""
    try:
        _converter_module()
    except GrammarError:
        return False
    return True


def _converter_module() -> Any:
    """llama-cpp-python's JSON-Schema -> GBNF converter. A device that runs ONNX only has no
    llama-cpp-python: its bundle carries the grammars precompiled (edgeagent build)."""
    try:
        from llama_cpp import llama_grammar
    except ImportError:
        raise GrammarError(
            "building a tool-call grammar needs llama-cpp-python's JSON-Schema converter, "
            "which is not installed here",
            hint="pip install llama-cpp-python, or run a bundle (edgeagent build): it carries "
            "its tools' grammars precompiled",
        ) from None
    return llama_grammar


def gbnf_literal(text: str) -> str:
    """A GBNF string literal matching `text` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


#: Keywords that say what a schema admits; a schema with none of them admits any JSON value.
_CONSTRAINING = {
    "type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf", "not", "properties",
    "additionalProperties", "items", "prefixItems", "pattern", "format",
}  # fmt: skip
#: keyword -> how its value holds subschemas: "map" ({name: schema}), "list" or "one"
_SUBSCHEMAS = {
    "properties": "map", "$defs": "map", "definitions": "map", "patternProperties": "map",
    "anyOf": "list", "oneOf": "list", "allOf": "list", "prefixItems": "list",
    "items": "one", "additionalProperties": "one", "not": "one",
}  # fmt: skip


def _prepare(node: Any, max_chars: int, ranges: dict[str, str], prefix: str) -> Any:
    """Rewrite a schema so that the converter's output is bounded and range-checked. Bounded
    numbers are replaced by a `$ref` to a rule written into `ranges`. Only subschemas are
    rewritten (a `default` or an `enum` value that looks like a schema is data)."""
    if not isinstance(node, dict):
        return node  # a boolean schema
    out: dict[str, Any] = {}
    for key, value in node.items():
        shape = _SUBSCHEMAS.get(key)
        if shape == "map" and isinstance(value, dict):
            value = {k: _prepare(v, max_chars, ranges, prefix) for k, v in value.items()}
        elif shape == "list" and isinstance(value, list):
            value = [_prepare(v, max_chars, ranges, prefix) for v in value]
        elif shape == "one":
            value = _prepare(value, max_chars, ranges, prefix)
        out[key] = value
    if not _CONSTRAINING & out.keys():
        # No type ({}, or a description alone, as BFCL's "any" becomes): any JSON value, by the
        # converter's own rule for one; its strings and numbers are made safe like ours.
        return {"type": "value"}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _expand_class_escapes(out["pattern"])
    kind = out.get("type")
    if kind == "string" and not {"pattern", "format", "enum", "const"} & out.keys():
        top = min(int(out.get("maxLength", max_chars)), max_chars)
        low = int(out.get("minLength", 0))
        if low > top:
            raise GrammarError(f"minLength {low} exceeds the string cap {max_chars}")
        # `char{m,n}`, not the converter's n nested optionals: llguidance (the ONNX backend's
        # grammar engine) refuses that nesting, and it is one rule either way for llama.cpp
        name = f"{prefix}-string-{len(ranges)}"
        ranges[name] = f'"\\"" char{{{low},{top}}} "\\"" space'
        module = _converter_module()
        # the converter's own texts (another would make it add "char0"); char is made safe later
        ranges.setdefault("char", module.PRIMITIVE_RULES["char"].content)
        ranges.setdefault("space", module.SPACE_RULE)
        return {"$ref": f"#/$defs/{name}"}
    elif kind in ("integer", "number") and _has_bounds(out) and "enum" not in out:
        name = f"{prefix}-range-{len(ranges)}"
        ranges[name] = _range_rule(out, integral=kind == "integer") + " space"
        return {"$ref": f"#/$defs/{name}"}
    return out


_CLASS_ESCAPES = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\r"}


def _expand_class_escapes(pattern: str) -> str:
    """A regex with \\d, \\w and \\s (and \\D, \\W, \\S) written as the character classes they
    stand for, and escaped literals (\\.) as one-character classes: llama-cpp-python's converter
    copies these escapes into the grammar, and llama.cpp's GBNF parser refuses them ("unknown
    escape")."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            body = _CLASS_ESCAPES.get(escaped.lower())
            if body is None and not in_class and not escaped.isalnum() and escaped not in "]\\^-":
                out.append(f"[{escaped}]")  # an escaped literal, which the converter keeps as \\.
            elif body is None:
                out.append(char + escaped)
            elif escaped.islower():
                out.append(body if in_class else f"[{body}]")
            elif in_class:
                raise GrammarError(f"pattern {pattern!r}: \\{escaped} inside [...] is unsupported")
            else:
                out.append(f"[^{body}]")
            i += 2
            continue
        in_class = (char == "[") if not in_class else char != "]"
        out.append(char)
        i += 1
    return "".join(out)


def _has_bounds(schema: dict[str, Any]) -> bool:
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    return any(k in schema for k in keys)


def _range_rule(schema: dict[str, Any], integral: bool) -> str:
    """GBNF for the numbers within a schema's bounds. Integers: exactly the range. Numbers: the
    integers in range, and `i.ddd` for each i >= 0 with [i, i+1) inside the range; sound (every
    admitted value is in range) though not complete (e.g. -0.5 in [-1, 0] is not admitted)."""
    lo, hi = -math.inf, math.inf
    if "minimum" in schema:
        lo = max(lo, float(schema["minimum"]))
    if "exclusiveMinimum" in schema:
        lo = max(lo, math.floor(float(schema["exclusiveMinimum"])) + 1)
    if "maximum" in schema:
        hi = min(hi, float(schema["maximum"]))
    if "exclusiveMaximum" in schema:
        hi = min(hi, math.ceil(float(schema["exclusiveMaximum"])) - 1)
    int_lo = -_MAX_ABS if lo == -math.inf else max(math.ceil(lo), -_MAX_ABS)
    int_hi = _MAX_ABS if hi == math.inf else min(math.floor(hi), _MAX_ABS)
    if int_lo > int_hi:
        raise GrammarError(f"no number the grammar can write lies within {json.dumps(schema)}")
    alternatives = [_int_range(int_lo, int_hi)]
    if not integral:
        frac_lo, frac_hi = (
            max(int_lo, 0),
            min(int_hi, math.floor(hi - 1)) if hi < math.inf else int_hi,
        )
        if frac_lo <= frac_hi:
            alternatives.append(f'({_int_range(frac_lo, frac_hi)}) "." [0-9]{{1,16}}')
    return "(" + " | ".join(f"({a})" for a in alternatives) + ")"


def _int_range(lo: int, hi: int) -> str:
    """GBNF matching exactly the decimal integers in [lo, hi], written canonically."""
    parts = []
    if lo < 0:
        parts.append('"-" (' + _natural_range(1 if hi >= 0 else -hi, -lo) + ")")
    if hi >= 0:
        parts.append(_natural_range(max(lo, 0), hi))
    return " | ".join(parts)


def _natural_range(lo: int, hi: int) -> str:
    alternatives = []
    for a, b in _split_range(lo, hi):
        seq = [f'"{x}"' if x == y else f"[{x}-{y}]" for x, y in zip(str(a), str(b), strict=True)]
        alternatives.append("(" + " ".join(seq) + ")")
    return " | ".join(alternatives)


def _split_range(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split [lo, hi] (lo >= 0) into runs like 120-129, 130-199, 200-999 whose bounds have the
    same number of digits and differ only as `prefix [x-y] [0-9]...` (range-to-regex)."""
    stops = {hi}
    nines = 1
    stop = _fill_nines(lo, nines)
    while lo <= stop < hi:
        stops.add(stop)
        nines += 1
        stop = _fill_nines(lo, nines)
    zeros = 1
    stop = _fill_zeros(hi + 1, zeros) - 1
    while lo < stop <= hi:
        stops.add(stop)
        zeros += 1
        stop = _fill_zeros(hi + 1, zeros) - 1
    ranges, start = [], lo
    for stop in sorted(stops):
        ranges.append((start, stop))
        start = stop + 1
    return ranges


def _fill_nines(value: int, count: int) -> int:
    text = str(value)
    return int(text[:-count] + "9" * count) if count < len(text) else int("9" * count)


def _fill_zeros(value: int, count: int) -> int:
    return value - value % (10**count)


#: a string value as the grammar writes it, with its length bounds (see _prepare)
_STRING_VALUE = re.compile(r'"\\"" char\{(\d+),(\d+)\} "\\""')


def restrict_values(grammar: str, strings: Sequence[str], numbers: Sequence[str]) -> str:
    """`grammar` with its free strings and unbounded numbers limited to the ones given (each
    string within its rule's length bounds; numbers as JSON literals, integers among them for
    integer rules). Where none fits a rule, that rule is left as it was. Enums, constants,
    patterns, formats and bounded numbers are not touched."""
    lines, added = grammar.splitlines(), {}

    def strings_rule(match: re.Match[str]) -> str:
        low, high = int(match[1]), int(match[2])
        fit = sorted({s for s in strings if low <= len(s) <= high})
        if not fit:
            return match[0]
        name = f"said-string-{low}-{high}"
        added[name] = " | ".join(gbnf_literal(json.dumps(s, ensure_ascii=False)) for s in fit)
        return name

    integers = [n for n in numbers if re.fullmatch(r"-?\d+", n)]
    for i, line in enumerate(lines):
        if line.startswith("number ::= ") and numbers:
            line = "number ::= said-number space"
            added["said-number"] = " | ".join(gbnf_literal(n) for n in sorted(set(numbers)))
        elif line.startswith("integer ::= ") and integers:
            line = "integer ::= said-integer space"
            added["said-integer"] = " | ".join(gbnf_literal(n) for n in sorted(set(integers)))
        lines[i] = _STRING_VALUE.sub(strings_rule, line)
    return "\n".join(lines + [f"{name} ::= {rule}" for name, rule in added.items()])
