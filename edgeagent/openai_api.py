"""The OpenAI chat-completions wire format, as `edgeagent serve` speaks it: requests checked and
turned into our messages and tools, replies turned into completion objects and stream chunks.
Pure functions and data: the server (edgeagent.server) does the I/O.

What a request may hold: `messages` (system, user, assistant with `tool_calls`, tool with
`tool_call_id`), `tools` (type function), `tool_choice` (auto, required, none, or a named
function), `parallel_tool_calls`, `response_format` (text, json_object, json_schema),
`max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `stop`, `seed`, `stream`,
`stream_options.include_usage`. Anything else is ignored, as OpenAI-compatible servers do.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.tools import Tool
from edgeagent.wireformat import ARGUMENTS_SEP, Message, ToolCall


class ApiError(Exception):
    """An error the client gets back as an OpenAI error object, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = (
            status,
            message,
            kind,
            param,
            code,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass
class ChatRequest:
    messages: list[Message]
    instructions: str | None
    tools: list[Tool]
    allow_answer: bool
    allow_calls: bool
    parallel: bool
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: list[str]
    stream: bool
    include_usage: bool
    json_schema: dict[str, Any] | None = None  # response_format: the answer is this JSON


def parse_request(body: Any, *, max_tokens_cap: int) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    messages, instructions = _messages(body.get("messages"))
    tools = _tools(body.get("tools") or [])
    allow_answer, allow_calls, tools = _tool_choice(body.get("tool_choice"), tools)
    json_schema = _response_format(body.get("response_format"))
    if json_schema is not None:
        allow_answer, allow_calls = True, False
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) or max_tokens_cap
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ApiError(400, "max_tokens must be a positive integer", param="max_tokens")
    temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, "stop must be a string or a list of strings", param="stop")
    options = body.get("stream_options") or {}
    return ChatRequest(
        messages=messages,
        instructions=instructions,
        tools=tools,
        allow_answer=allow_answer,
        allow_calls=allow_calls and bool(tools),
        parallel=body.get("parallel_tool_calls", True) is not False,
        max_tokens=min(max_tokens, max_tokens_cap),
        temperature=temperature,
        top_p=_number(body, "top_p", 0.95, 0.0, 1.0),
        seed=int(body.get("seed") or 0),
        stop=stop[:4],
        stream=bool(body.get("stream")),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        json_schema=json_schema,
    )


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, int | float) or not lo <= value <= hi:
        raise ApiError(400, f"{key} must be a number from {lo} to {hi}", param=key)
    return float(value)


def _messages(raw: Any) -> tuple[list[Message], str | None]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "messages must be a non-empty list", param="messages")
    messages: list[Message] = []
    system: list[str] = []
    names: dict[str, str] = {}  # tool_call_id -> tool name
    for i, msg in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise ApiError(400, f"{where} must be an object", param=where)
        role, content = msg.get("role"), _text(msg.get("content"), where)
        if role in ("system", "developer"):
            system.append(content)
        elif role == "user":
            messages.append(Message("user", content))
        elif role == "assistant":
            calls = []
            for raw_call in msg.get("tool_calls") or []:
                try:
                    cid, call = parse_tool_call(raw_call)
                except (KeyError, TypeError, ValueError) as exc:
                    raise ApiError(400, f"{where}.tool_calls: {exc}", param=where) from None
                names[cid] = call.name
                calls.append(call)
            messages.append(Message("assistant", "" if calls else content, calls))
        elif role == "tool":
            name = names.get(str(msg.get("tool_call_id", "")), str(msg.get("name") or ""))
            if not name:
                raise ApiError(
                    400,
                    f"{where}: a tool message needs the tool_call_id of an "
                    "earlier assistant tool call",
                    param=where,
                )
            messages.append(Message("tool", content, name=name))
        else:
            raise ApiError(
                400,
                f"{where}.role must be system, user, assistant or tool, not {role!r}",
                param=where,
            )
    if not any(m.role in ("user", "tool") for m in messages):
        raise ApiError(400, "messages need at least one user message", param="messages")
    return messages, "\n\n".join(system) or None


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise ApiError(400, f"{where}.content must be a string or a list of parts", param=where)


def _tools(raw: Any) -> list[Tool]:
    if not isinstance(raw, list):
        raise ApiError(400, "tools must be a list", param="tools")
    tools = []
    for i, item in enumerate(raw):
        spec = item.get("function") if isinstance(item, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ApiError(
                400,
                f"tools[{i}] must be {{type: function, function: {{name, ...}}}}",
                param=f"tools[{i}]",
            )
        params = spec.get("parameters") or {"type": "object", "properties": {}}
        try:
            tools.append(Tool.from_schema(spec["name"], spec.get("description") or "", params))
        except EdgeAgentError as exc:
            raise ApiError(400, str(exc.args[0]), param=f"tools[{i}]") from None
    if len({t.name for t in tools}) != len(tools):
        raise ApiError(400, "two tools have the same name", param="tools")
    return tools


def _tool_choice(choice: Any, tools: list[Tool]) -> tuple[bool, bool, list[Tool]]:
    """(answer allowed, calls allowed, tools offered)."""
    if choice in (None, "auto"):
        return True, True, tools
    if choice == "none":
        return True, False, tools
    if choice == "required":
        if not tools:
            raise ApiError(
                400, "tool_choice is required but there are no tools", param="tool_choice"
            )
        return False, True, tools
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    named = [t for t in tools if t.name == name]
    if not named:
        raise ApiError(
            400, f"tool_choice names {name!r}, which is not among the tools", param="tool_choice"
        )
    return False, True, named


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if fmt in (None, {}) or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if not isinstance(fmt, dict):
        raise ApiError(400, "response_format must be an object", param="response_format")
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise ApiError(
                400,
                "response_format.json_schema.schema must be a JSON Schema",
                param="response_format",
            )
        return schema
    raise ApiError(
        400, f"response_format type {fmt.get('type')!r} is not supported", param="response_format"
    )


# ---------------------------------------------------------------------------- replies


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def parse_tool_call(raw: Any) -> tuple[str, ToolCall]:
    """(id, call) of one entry of an OpenAI `tool_calls` list (arguments as a JSON string or
    an object); KeyError, TypeError or ValueError when it is malformed."""
    fn = raw["function"]
    args = fn.get("arguments") or "{}"
    arguments = json.loads(args) if isinstance(args, str) else args
    if not isinstance(arguments, dict):
        raise ValueError("arguments are not an object")
    return str(raw.get("id", "")), ToolCall(str(fn["name"]), arguments)


def tool_call_object(call: ToolCall, cid: str | None = None) -> dict[str, Any]:
    """One entry of an OpenAI `tool_calls` list (a new id unless given)."""
    arguments = json.dumps(call.arguments, ensure_ascii=False)
    function = {"name": call.name, "arguments": arguments}
    return {"id": cid or call_id(), "type": "function", "function": function}


def tool_call_objects(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [tool_call_object(c) for c in calls]


def to_openai_messages(messages: list[Message], instructions: str | None) -> list[dict[str, Any]]:
    """Our conversation as OpenAI chat messages (the other way from parse_request; call ids
    made up, in order): what edgeagent.fallback sends a larger model."""
    out: list[dict[str, Any]] = []
    if instructions:
        out.append({"role": "system", "content": instructions})
    pending: list[str] = []
    for i, msg in enumerate(messages):
        if msg.role == "assistant" and msg.calls:
            pending = [f"call_{i}_{j}" for j in range(len(msg.calls))]
            calls = [tool_call_object(c, cid) for cid, c in zip(pending, msg.calls, strict=True)]
            out.append({"role": "assistant", "content": None, "tool_calls": calls})
        elif msg.role == "tool":
            cid = pending.pop(0) if pending else f"call_{i}"
            out.append({"role": "tool", "tool_call_id": cid, "content": msg.content})
        else:
            out.append({"role": msg.role, "content": msg.content})
    return out


def completion(
    rid: str,
    model: str,
    content: str | None,
    calls: list[ToolCall],
    finish: str,
    usage: dict[str, int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = tool_call_objects(calls)
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
        **(extra or {}),
    }


def chunk(
    rid: str,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


class CallDeltas:
    """Tool-call deltas as the OpenAI client assembles them, from the wire text of a call list
    as it is generated: for each call, first its id and name, then its arguments in fragments.
    The grammar writes calls canonically: `<tool_call>[{"name": N, "arguments": {...}}, ...]`."""

    def __init__(self) -> None:
        self.text = ""
        self.index = -1  # the call being written
        self._at = 0  # how far the text has been read
        self._state = "head"  # head -> name -> args -> between
        self._depth = 0
        self._in_string = self._escape = False

    def feed(self, piece: str) -> list[dict[str, Any]]:
        self.text += piece
        out: list[dict[str, Any]] = []
        while True:
            if self._state in ("head", "between"):
                start = self.text.find('"name": ', self._at)
                if start < 0:
                    return out
                self._at = start + len('"name": ')
                self._state = "name"
            if self._state == "name":
                end = self.text.find(ARGUMENTS_SEP, self._at)
                if end < 0:
                    return out
                name = json.loads(self.text[self._at : end])
                self.index += 1
                out.append(
                    {
                        "index": self.index,
                        "id": call_id(),
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                )
                self._at = end + len(ARGUMENTS_SEP)
                self._state, self._depth = "args", 0
            if self._state == "args":
                fragment, done = self._scan_args()
                if fragment:
                    out.append({"index": self.index, "function": {"arguments": fragment}})
                if not done:
                    return out
                self._state = "between"

    def _scan_args(self) -> tuple[str, bool]:
        """The arguments' characters read so far (without the space before them), and
        whether the object closed."""
        start = self._at
        while self._depth == 0 and start < len(self.text) and self.text[start].isspace():
            start += 1
        i = start
        while i < len(self.text):
            ch = self.text[i]
            i += 1
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch == "{":
                self._depth += 1
            elif ch == "}":
                self._depth -= 1
                if self._depth == 0:
                    self._at = i
                    return self.text[start:i], True
        self._at = i
        return self.text[start:i], False
