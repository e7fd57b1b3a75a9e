"""The conversation on screen: user messages, the answer as it streams, a call while the model
writes it, and a card per tool call. It turns the agent's events (and a resumed session's
messages) into widgets; the app decides when a turn starts and ends."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from edgeagent.agent import Session
from edgeagent.apps.widgets import AnswerMessage, CallDraft, ToolCallCard, UserMessage
from edgeagent.results import (
    Event,
    RunFinished,
    RunResult,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)


class ConversationView(VerticalScroll):
    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.last_answer = ""
        # the widgets of the reply being streamed
        self._answer: AnswerMessage | None = None
        self._draft: CallDraft | None = None
        self._cards: list[ToolCallCard] = []

    def start_turn(self, prompt: str) -> None:
        self._answer, self._draft, self._cards = None, None, []
        self.add(UserMessage(prompt))

    def show(self, event: Event) -> RunResult | None:
        """Show one event of the turn; the result when the turn has finished."""
        if isinstance(event, TextDelta) and event.kind == "call":
            if self._draft is None:
                self._draft = CallDraft()
                self.add(self._draft)
            self._draft.append(event.text)
        elif isinstance(event, TextDelta):
            if self._answer is None:
                self._answer = AnswerMessage()
                self.add(self._answer)
            self._answer.append(event.text)
            self.scroll_end(animate=False)
        elif isinstance(event, ToolCallStarted):
            self._drop_draft()
            self._cards.append(ToolCallCard(event.call))
            self.add(self._cards[-1])
        elif isinstance(event, ToolCallFinished):
            card = next(c for c in self._cards if c.record is None)
            card.finish(event.record)
            self.scroll_end(animate=False)
        elif isinstance(event, RunFinished):
            self._drop_draft()
            if self._answer is None:  # every reply was a call: show the loop's last word
                self._answer = AnswerMessage(event.result.answer)
                self.add(self._answer)
            self._answer.finish()
            self.last_answer = self._answer.text
            return event.result
        return None

    def waiting(self) -> None:
        """The running call waits for the user's yes or no."""
        card = next((c for c in self._cards if c.record is None), None)
        if card is not None:
            card.waiting()

    def end_turn(self, note: str | None, recalled: tuple[str, ...] = ()) -> None:
        """The turn is over: kept (note None), or taken back with a note saying why."""
        self._drop_draft()
        users = self.query(UserMessage)
        if note is None:
            if users:
                users.last().show_recalled(recalled)
            return
        if self._answer is not None:
            self._answer.finish(note)
        else:
            self.add(Static(Text(f"({note})", style="dim"), classes="note"))
        if users:
            users.last().border_subtitle = "not kept in the conversation"

    def replay(self, session: Session) -> None:
        """Show a resumed conversation: messages, and cards from the saved call records."""
        records = iter(session.records)
        cards: list[ToolCallCard] = []
        for msg in session.messages:
            if msg.role == "user":
                user = UserMessage(msg.content)
                user.show_recalled(msg.recalled)
                self.add(user)
            elif msg.role == "assistant" and msg.calls:
                for call in msg.calls:
                    cards.append(ToolCallCard(call))
                    self.add(cards[-1])
            elif msg.role == "tool":
                record = next(records, None)
                card = next((c for c in cards if c.record is None), None)
                if card is not None and record is not None:
                    card.finish(record)
            else:
                self.add(AnswerMessage(msg.content))
                self.last_answer = msg.content

    def clear(self) -> None:
        self.remove_children()
        self.last_answer = ""

    def add(self, widget: Static) -> None:
        self.mount(widget)
        self.scroll_end(animate=False)

    def _drop_draft(self) -> None:
        if self._draft is not None:
            self._draft.remove()
            self._draft = None
