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
from edgeagent.openai_api import parse_tool_call, to_openai_messages
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
            calls = [parse_tool_call(c)[1] for c in message.get("tool_calls") or []]
            return str(message.get("content") or ""), calls
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise FallbackError(f"the fallback's reply is malformed ({exc})") from None
