"""The pieces of the chat screen: messages, tool-call cards, the status line, the conversation
list and the memories panel."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Label, ListItem, ListView, Static

from edgeagent.agent import RunResult, ToolCallRecord
from edgeagent.conversations import ConversationInfo
from edgeagent.wireformat import ToolCall

RESULT_LINES = 6  # a card shows this many lines of a tool's result


class UserMessage(Static):
    """What the user typed, and how many memories were recalled for it."""

    def __init__(self, text: str) -> None:
        super().__init__(Text(text), classes="message user")
        self.border_title = "you"

    def show_recalled(self, recalled: tuple[str, ...]) -> None:
        count = len(recalled)
        if count:
            self.border_subtitle = f"{count} memor{'y' if count == 1 else 'ies'} recalled · ^r"


class AnswerMessage(Static):
    """The assistant's answer, growing token by token."""

    def __init__(self, text: str = "") -> None:
        super().__init__(Text(text), classes="message answer")
        self.border_title = "assistant"
        self.text = text

    def append(self, piece: str) -> None:
        self.text += piece
        self.update(Text(self.text))

    def finish(self, note: str = "") -> None:
        self.text = self.text.strip()
        self.update(Text(self.text or "(no answer)"))
        if note:
            self.border_subtitle = note


class CallDraft(Static):
    """A tool call while the model writes it (grammar-constrained JSON, as generated)."""

    def __init__(self) -> None:
        super().__init__("", classes="draft")
        self.text = ""

    def append(self, piece: str) -> None:
        self.text += piece
        self.update(Text(f"writing a call… {self.text}", style="dim", overflow="ellipsis"))


class ToolCallCard(Static):
    """One tool call: name, arguments, then its result or error and how long it took."""

    def __init__(self, call: ToolCall) -> None:
        super().__init__(classes="card -running")
        self.call = call
        self.border_title = f"⚙ {call.name}"
        self.border_subtitle = "running…"
        self.record: ToolCallRecord | None = None
        self.update(self._body())

    def waiting(self) -> None:
        self.border_subtitle = "waiting for you…"

    def finish(self, record: ToolCallRecord) -> None:
        self.record = record
        status = "ok" if record.status == "ran" else str(record.status)
        self.set_classes(f"card -{status}")
        self.border_subtitle = f"{status} · {record.duration_s * 1000:.0f} ms"
        self.update(self._body())

    def _body(self) -> Text:
        text = Text()
        for key, value in self.call.arguments.items():
            text.append(f"{key}", style="bold")
            text.append(f" = {json.dumps(value, ensure_ascii=False)}\n")
        if not self.call.arguments:
            text.append("(no arguments)\n", style="dim")
        if self.record is not None:
            if self.record.ok:
                lines = self.record.result.splitlines() or [""]
                shown = "\n".join(lines[:RESULT_LINES])
                more = len(lines) - RESULT_LINES
                text.append("→ ", style="green")
                text.append(shown + (f"\n… {more} more lines" if more > 0 else ""))
            else:
                text.append("✗ ", style="red")
                text.append(self.record.error or self.record.result, style="red")
        text.rstrip()
        return text


class StatusLine(Static):
    """Context meter (tokens of n_ctx, turns evicted) and the last reply's speed."""

    BAR = 8

    def __init__(self) -> None:
        super().__init__("", id="status")
        self.context = ""
        self.speed = "ready"

    def show_context(self, used: int, n_ctx: int, evicted: int) -> None:
        filled = round(self.BAR * min(used / n_ctx, 1.0)) if n_ctx else 0
        bar = "█" * filled + "░" * (self.BAR - filled)
        self.context = f"ctx {bar} {used}/{n_ctx} · {evicted} evicted"
        self._show()

    def show_speed(self, result: RunResult) -> None:
        self.speed = f"{result.decode_tokens_per_s:.0f} tok/s · TTFT {result.timings.ttft_s:.2f} s"
        self._show()

    def show_state(self, state: str) -> None:
        self.speed = state
        self._show()

    def _show(self) -> None:
        self.update(Text(f"{self.context}  │  {self.speed}" if self.context else self.speed))


class ConversationList(ListView):
    """Saved conversations, newest first: Enter opens one, Delete deletes it."""

    BINDINGS = [Binding("delete", "app.delete_conversation", "Delete")]

    def on_focus(self) -> None:
        if self.index is None and len(self):  # so that Enter opens something
            self.index = 0


class ConversationItem(ListItem):
    def __init__(self, info: ConversationInfo) -> None:
        when = dt.datetime.fromtimestamp(info.updated_at).strftime("%d %b %H:%M")
        super().__init__(Label(Text(info.title, overflow="ellipsis")), Label(when, classes="when"))
        self.info = info


def memories_text(messages: list[Any], stats: dict[str, Any]) -> Text:
    """The memories recalled for this conversation's turns (newest first) and the index size."""
    text = Text()
    kinds = ", ".join(f"{n} {kind}s" for kind, n in sorted(stats["by_kind"].items()))
    text.append(f"memory: {stats['entries']} entries ({kinds or 'none'})\n", style="bold")
    recalled = [(m.content, m.recalled) for m in messages if m.role == "user" and m.recalled]
    if not recalled:
        text.append("Nothing recalled in this conversation yet.", style="dim")
    for prompt, memories in reversed(recalled[-3:]):
        text.append(f"for “{prompt[:40]}”:\n", style="italic")
        text.append("".join(f"- {m}\n" for m in memories))
    return text
