"""Asking the user before a tool with side effects runs: the agent asks from the worker thread
(`Agent.confirm`), the question is a modal on the UI thread, and the worker waits for it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from rich.text import Text
from textual.app import App

from edgeagent.apps.screens import AskScreen
from edgeagent.tools import Tool
from edgeagent.wireformat import ToolCall


class ConfirmBridge:
    """`Agent.confirm` for a Textual app. `cancelled` set: nothing more is asked this turn (the
    answer is no); `before_asking` runs on the UI thread as the question opens."""

    def __init__(
        self,
        app: App[None],
        cancelled: threading.Event,
        before_asking: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self.cancelled = cancelled
        self.before_asking = before_asking

    def __call__(self, call: ToolCall, tool: Tool) -> bool:
        if self.cancelled.is_set():
            return False
        decided = threading.Event()
        answer: list[bool] = []

        def done(yes: bool | None) -> None:
            answer.append(bool(yes))
            decided.set()

        def ask() -> None:
            self.before_asking()
            self.app.push_screen(AskScreen("Run this tool?", question(call, tool), "Run",
                                           "Don't run"), done)  # fmt: skip

        self.app.call_from_thread(ask)
        while not decided.wait(0.2):
            if not self.app.is_running:  # the app quit with the question open
                return False
        return answer[0]


def question(call: ToolCall, tool: Tool) -> Text:
    args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
    body = Text()
    body.append(f"{call.name}({args})\n", style="bold")
    body.append(f"{tool.description}\n")
    effect = "changes data on this device" if tool.effects == "write" else "acts outside it"
    body.append(f"This tool {effect}.", style="italic")
    return body
