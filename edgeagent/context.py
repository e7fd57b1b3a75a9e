"""The sliding-window context: which turns of a conversation go into the prompt.

    ┌──────────────── n_ctx ─────────────────────────────────────────────┐
    │ pinned: system prompt + tool schemas │ turns, oldest … newest │ reply │
    └──────────────────────────────────────┴────────────────────────┴──────┘
                                             ▲ evicted from here      reserve

A turn is a user message and everything up to the next one (calls, tool results, the answer), so
a call is never separated from its result. When the prompt would exceed n_ctx minus the reply
reserve, the oldest turns are evicted into the memory index; the newest turn always stays. The
backend then drops the evicted range from its KV cache and shifts the rest, so an eviction costs
the evaluation of what changed, not of the whole window.

Before each user turn the memory index is searched for that turn's text; the best hits (from
evicted turns and saved notes) go into a bounded "recalled" slot attached to that user message.
The slot stays with the message, so the rendered prompt remains a stable prefix for the KV cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgeagent.memory import MemoryIndex
from edgeagent.wireformat import Message, format_calls

TokenCounter = Callable[[list[Message]], int]


@dataclass
class WindowSettings:
    recall_k: int = 3  # memories recalled per user turn
    recall_chars: int = 480  # bound on the recalled slot
    memory_kinds: tuple[str, ...] = ("turn", "note")


def split_turns(messages: Sequence[Message]) -> list[list[Message]]:
    """Group messages into turns, each starting with a user message."""
    turns: list[list[Message]] = []
    for msg in messages:
        if msg.role == "user" or not turns:
            turns.append([msg])
        else:
            turns[-1].append(msg)
    return turns


def turn_text(turn: Sequence[Message]) -> str:
    """A turn as plain text for the memory index."""
    lines = []
    for msg in turn:
        if msg.role == "user":
            lines.append(f"User: {msg.content}")
        elif msg.role == "assistant" and msg.calls:
            lines.append(f"Assistant called: {format_calls(msg.calls)}")
        elif msg.role == "tool":
            lines.append(f"Result of {msg.name}: {msg.content}")
        elif msg.role == "assistant":
            lines.append(f"Assistant: {msg.content}")
    return "\n".join(lines)


class ContextWindow:
    """Keeps a session's prompt inside a token budget, evicting whole turns into memory."""

    def __init__(
        self,
        memory: MemoryIndex | None,
        session_id: str,
        settings: WindowSettings | None = None,
    ) -> None:
        self.memory = memory
        self.session_id = session_id
        self.settings = settings or WindowSettings()
        self.start = 0  # index into the session's messages of the first message in the window
        self.evicted_turns = 0

    def visible(self, messages: Sequence[Message]) -> list[Message]:
        return list(messages[self.start :])

    def fit(self, messages: Sequence[Message], count: TokenCounter, budget: int) -> int:
        """Evict the oldest turns until the visible messages fit `budget` tokens (the newest
        turn always stays). Returns the token count of what is visible."""
        used = count(self.visible(messages))
        while used > budget:
            turns = split_turns(self.visible(messages))
            if len(turns) <= 1:
                return used  # only the current turn is left: the caller reports the overflow
            oldest = turns[0]
            self._remember(oldest)
            self.start += len(oldest)
            self.evicted_turns += 1
            used = count(self.visible(messages))
        return used

    def _remember(self, turn: list[Message]) -> None:
        if self.memory is None:
            return
        self.memory.add(
            turn_text(turn),
            kind="turn",
            metadata={"session": self.session_id, "turn": self.evicted_turns},
        )

    def recall(self, query: str) -> tuple[str, ...]:
        """The recalled slot for a new user turn: the best memories, each on one line, bounded
        in size."""
        if self.memory is None or self.settings.recall_k <= 0:
            return ()
        hits = self.memory.search(
            query, k=self.settings.recall_k, kind=list(self.settings.memory_kinds)
        )
        lines: list[str] = []
        size = 0
        for hit in hits:
            text = " ".join(hit.text.split())
            room = self.settings.recall_chars - size
            if room <= 20:
                break
            text = text if len(text) <= room else text[: room - 1] + "…"
            lines.append(text)
            size += len(text) + 3
        return tuple(lines)
