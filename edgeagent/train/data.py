"""Training data: the canonical chat JSONL format, its validation, and importers.

One example per line, OpenAI style:

    {"tools": [{"type": "function", "function": {"name": ..., "description": ...,
                                                  "parameters": {JSON Schema}}}],
     "messages": [{"role": "system" | "user" | "assistant" | "tool", "content": ...,
                   "tool_calls": [{"type": "function",
                                   "function": {"name": ..., "arguments": {...} or "json"}}]}]}

Multi-turn conversations, parallel calls (several tool_calls) and no-call turns (an assistant
message with content only) are all examples of the same shape. Validation reports every problem
with its line number and field; bad lines are skipped and counted, never silently changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeagent.tools import Tool
from edgeagent.wireformat import Message, ToolCall

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Example:
    tools: list[Tool]
    messages: list[Message]
    instructions: str | None = None  # the example's own system message, if any
    line: int = 0


@dataclass
class Problem:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.reason}"


@dataclass
class Report:
    path: str
    lines: int = 0
    valid: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len({p.line for p in self.problems})

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "lines": self.lines,
            "valid": self.valid,
            "skipped": self.skipped,
            "problems": [p.__dict__ for p in self.problems],
        }


class _Invalid(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def read_jsonl(
    path: str | Path, parse: Callable[[Any], Example] | None = None
) -> tuple[list[Example], Report]:
    """Read and validate a JSONL file, canonical or (with `parse`, e.g. an importer's) another
    format. Returns the valid examples and a report."""
    report = Report(str(path))
    examples: list[Example] = []
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            report.lines = number
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                report.problems.append(Problem(number, "(line)", f"not UTF-8: {exc.reason}"))
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                report.problems.append(Problem(number, "(line)", f"not JSON: {exc.msg}"))
                continue
            try:
                examples.append(parse(data) if parse else parse_example(data, number))
            except _Invalid as exc:
                report.problems.append(Problem(number, exc.field, exc.reason))
    report.valid = len(examples)
    return examples, report


def parse_example(data: Any, line: int = 0) -> Example:
    """Validate one example (raises _Invalid naming the field) and convert it."""
    if not isinstance(data, dict):
        raise _Invalid("(line)", "an example is a JSON object")
    tools = _parse_tools(data.get("tools", []))
    by_name = {t.name: t for t in tools}
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _Invalid("messages", "must be a non-empty list")
    messages: list[Message] = []
    instructions = None
    pending: list[str] = []  # calls of the last assistant message still waiting for results
    for i, msg in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _Invalid(where, "must be an object")
        role = msg.get("role")
        if role not in ROLES:
            raise _Invalid(f"{where}.role", f"must be one of {', '.join(ROLES)}, not {role!r}")
        content = msg.get("content") or ""
        if not isinstance(content, str):
            raise _Invalid(f"{where}.content", "must be a string")
        if role == "system":
            if i != 0:
                raise _Invalid(where, "a system message must come first")
            instructions = content
        elif role == "assistant" and msg.get("tool_calls"):
            calls = [
                _parse_call(c, f"{where}.tool_calls[{j}]", by_name)
                for j, c in enumerate(msg["tool_calls"])
            ]
            messages.append(Message("assistant", calls=calls))
            pending = [c.name for c in calls]
        elif role == "assistant":
            if not content.strip():
                raise _Invalid(where, "an assistant message needs content or tool_calls")
            messages.append(Message("assistant", content))
        elif role == "tool":
            if not pending:
                raise _Invalid(where, "a tool result must follow an assistant message with calls")
            name = msg.get("name") or pending[0]
            if name not in pending:
                raise _Invalid(f"{where}.name", f"{name!r} was not called")
            pending.remove(name)
            messages.append(Message("tool", content, name=name))
        else:
            messages.append(Message(role, content))
    if not any(m.role == "assistant" for m in messages):
        raise _Invalid("messages", "has no assistant message to learn from")
    if not any(m.role == "user" for m in messages):
        raise _Invalid("messages", "has no user message")
    return Example(tools, messages, instructions, line)


def _parse_tools(raw: Any) -> list[Tool]:
    if not isinstance(raw, list):
        raise _Invalid("tools", "must be a list")
    tools = []
    for i, item in enumerate(raw):
        spec = item.get("function", item) if isinstance(item, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise _Invalid(f"tools[{i}]", "needs a function with a string name")
        params = spec.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise _Invalid(f"tools[{i}].parameters", "must be a JSON Schema object")
        try:
            tools.append(Tool.from_schema(spec["name"], spec.get("description", ""), params))
        except Exception as exc:
            raise _Invalid(f"tools[{i}]", str(exc).splitlines()[0]) from None
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise _Invalid("tools", "two tools share a name")
    return tools


def _parse_call(raw: Any, where: str, by_name: dict[str, Tool]) -> ToolCall:
    fn = raw.get("function", raw) if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _Invalid(where, "needs a function with a string name")
    name = fn["name"]
    if name not in by_name:
        raise _Invalid(f"{where}.function.name", f"{name!r} is not among the example's tools")
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            raise _Invalid(f"{where}.function.arguments", f"not JSON: {exc.msg}") from None
    if not isinstance(args, dict):
        raise _Invalid(f"{where}.function.arguments", "must be an object")
    try:
        by_name[name].validate(args)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Invalid(
            f"{where}.function.arguments", f"do not match the schema: {reason}"
        ) from None
    return ToolCall(name, args)


def example_to_dict(example: Example) -> dict[str, Any]:
    """An example in the canonical JSONL shape (what importers write)."""
    messages: list[dict[str, Any]] = []
    if example.instructions:
        messages.append({"role": "system", "content": example.instructions})
    for m in example.messages:
        if m.role == "assistant" and m.calls:
            calls = [{"type": "function", "function": c.to_dict()} for c in m.calls]
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        elif m.role == "tool":
            messages.append({"role": "tool", "name": m.name, "content": m.content})
        else:
            messages.append({"role": m.role, "content": m.content})
    tools = [{"type": "function", "function": t.spec()} for t in example.tools]
    return {"tools": tools, "messages": messages}


def write_jsonl(examples: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write examples atomically (edgeagent.paths.publishing). Returns the count."""
    from edgeagent.paths import publishing

    count = 0
    with publishing(Path(path)) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex, ensure_ascii=False) + "\n")
            count += 1
    return count
