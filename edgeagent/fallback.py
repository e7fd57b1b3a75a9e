"""Escalation: a turn the small model is unsure of is asked again of a larger model behind an
OpenAI-compatible server (a bigger GGUF under `edgeagent serve`, llama.cpp's server, vLLM, ...).

The fallback's calls are validated against the same schemas, and go through the same
permission rules, before anything runs (edgeagent.agent). A fallback that is down, slow or
answers nonsense leaves the local reply standing; the reason is recorded on the result.
Only the standard library's HTTP client: no dependency on a device.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.tools import Tool
from edgeagent.wireformat import Message, ToolCall


class FallbackError(EdgeAgentError):
    """The fallback could not give a usable reply."""


@dataclass(frozen=True)
class Fallback:
    url: str  # the API's base, e.g. http://gpu-box:8080/v1
    model: str = "default"
    api_key: str | None = None
    timeout_s: float = 30.0

    def ask(
        self, messages: list[Message], instructions: str | None, tools: list[Tool],
        allow_answer: bool = True,
    ) -> tuple[str, list[ToolCall]]:  # fmt: skip
        """(answer, calls) of the fallback's reply to the conversation so far."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages, instructions),
            "max_tokens": 512,
            "temperature": 0,
        }
        if tools:
            body["tools"] = [{"type": "function", "function": t.spec()} for t in tools]
            body["tool_choice"] = "auto" if allow_answer else "required"
        request = urllib.request.Request(
            self.url.rstrip("/") + "/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise FallbackError(f"the fallback at {self.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FallbackError(f"the fallback at {self.url} is unreachable ({reason})") from None
        except ValueError:
            raise FallbackError(f"the fallback at {self.url} did not answer JSON") from None
        try:
            message = reply["choices"][0]["message"]
            calls = [
                ToolCall(c["function"]["name"], _arguments(c["function"].get("arguments")))
                for c in message.get("tool_calls") or []
            ]
            return str(message.get("content") or ""), calls
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise FallbackError(f"the fallback's reply is malformed ({exc})") from None


def _arguments(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else (raw or {})
    if not isinstance(value, dict):
        raise ValueError("arguments are not an object")
    return value


def to_openai_messages(messages: list[Message], instructions: str | None) -> list[dict[str, Any]]:
    """Our conversation as OpenAI chat messages (call ids made up, in order)."""
    out: list[dict[str, Any]] = []
    if instructions:
        out.append({"role": "system", "content": instructions})
    pending: list[str] = []
    for i, msg in enumerate(messages):
        if msg.role == "assistant" and msg.calls:
            ids = [f"call_{i}_{j}" for j in range(len(msg.calls))]
            pending = ids
            out.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": cid, "type": "function", "function": {
                    "name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                for cid, c in zip(ids, msg.calls, strict=True)]})  # fmt: skip
        elif msg.role == "tool":
            cid = pending.pop(0) if pending else f"call_{i}"
            out.append({"role": "tool", "tool_call_id": cid, "content": msg.content})
        else:
            out.append({"role": msg.role, "content": msg.content})
    return out
