"""Importers into the canonical format: xLAM function-calling records and BFCL cases."""

from __future__ import annotations

import json
import re
from typing import Any

from edgeagent.bfcl import Case, to_json_schema
from edgeagent.tools import Tool
from edgeagent.train.data import Example, _Invalid, parse_example
from edgeagent.wireformat import Message, ToolCall

_XLAM_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer",
               "float": "number", "number": "number", "bool": "boolean", "boolean": "boolean",
               "dict": "object", "list": "array", "tuple": "array", "any": None}  # fmt: skip


def xlam_type(text: str) -> tuple[dict[str, Any], bool]:
    """An xLAM type string ("str", "List[int]", "float, optional") as JSON Schema, and whether
    the parameter is optional."""
    optional = "optional" in text.lower()
    core = re.sub(r",?\s*optional", "", text, flags=re.I).strip()
    match = re.fullmatch(r"(?i)(list|tuple|set)\[(.+)\]", core)
    if match:
        items, _ = xlam_type(match.group(2))
        return {"type": "array", "items": items}, optional
    if re.fullmatch(r"(?i)(dict|mapping)(\[.*\])?", core):
        return {"type": "object"}, optional
    kind = _XLAM_TYPES.get(core.lower())
    return ({"type": kind} if kind else {}), optional


def from_xlam(record: Any) -> Example:
    """An xLAM record (query, tools, answers; tools and answers may be JSON strings)."""
    if not isinstance(record, dict):
        raise _Invalid("(line)", "an xLAM record is a JSON object")
    tools_raw = _maybe_json(record.get("tools"), "tools")
    answers = _maybe_json(record.get("answers"), "answers")
    if not isinstance(record.get("query"), str):
        raise _Invalid("query", "must be a string")
    tools = []
    for i, spec in enumerate(tools_raw):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise _Invalid(f"tools[{i}]", "must be an object with a string name")
        parameters = spec.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise _Invalid(f"tools[{i}].parameters", "must be an object")
        props, required = {}, []
        for pname, p in parameters.items():
            if not isinstance(p, dict):
                raise _Invalid(f"tools[{i}].parameters.{pname}", "must be an object")
            schema, optional = xlam_type(str(p.get("type", "any")))
            if p.get("description"):
                schema["description"] = str(p["description"])
            props[pname] = schema
            if not optional and "default" not in p:
                required.append(pname)
        params = {"type": "object", "properties": props, "required": required}
        function = {"name": spec["name"], "description": str(spec.get("description") or ""),
                    "parameters": params}  # fmt: skip
        tools.append({"type": "function", "function": function})
    calls = []
    for i, answer in enumerate(answers):
        if not isinstance(answer, dict):
            raise _Invalid(f"answers[{i}]", "must be an object with name and arguments")
        function = {"name": answer.get("name"), "arguments": answer.get("arguments", {})}
        calls.append({"type": "function", "function": function})
    messages: list[dict[str, Any]] = [{"role": "user", "content": record["query"]}]
    if calls:
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})
    else:
        messages.append({"role": "assistant", "content": "None of the tools fits this request."})
    return parse_example({"tools": tools, "messages": messages})


def _maybe_json(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _Invalid(name, f"not JSON: {exc.msg}") from None
    if not isinstance(value, list):
        raise _Invalid(name, "must be a list")
    return value


def from_bfcl(case: Case) -> Example:
    """A BFCL case with its first acceptable answer as the target calls."""
    tools = [
        Tool.from_schema(f["name"], f.get("description", ""), to_json_schema(f["parameters"]))
        for f in case.functions
    ]
    messages = [Message("user", m["content"]) for m in case.messages if m["role"] == "user"]
    calls = [
        ToolCall(name, _first_choice(args))
        for call in case.answer or []
        for name, args in call.items()
    ]
    if calls:
        messages.append(Message("assistant", calls=calls))
    else:
        messages.append(Message("assistant", "None of the tools fits this request."))
    return Example(tools, messages)


def _first_choice(options: dict[str, list[Any]]) -> dict[str, Any]:
    """BFCL lists acceptable values per parameter; "" means it may be left out."""
    out = {}
    for key, values in options.items():
        picked = next((v for v in values if v != ""), None)
        if picked is None:
            continue
        out[key] = _first_choice(picked) if isinstance(picked, dict) else picked
    return out
