"""The terminal assistant: `edgeagent chat`, a Textual app over one agent.

Generation runs in a thread worker, so the screen stays live; events from `Session.stream` come
back to the UI thread one by one. Escape stops a generation (the turn is then taken back, as if
never sent). A call of a tool with side effects waits for a yes in a modal before it runs.
Conversations are saved in the agent's memory file after every turn.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, ListView, Static

from edgeagent.agent import (
    Agent,
    Event,
    Session,
)
from edgeagent.apps.confirm import ConfirmBridge
from edgeagent.apps.conversation_view import ConversationView
from edgeagent.apps.screens import AskScreen, ErrorScreen
from edgeagent.apps.widgets import (
    ConversationItem,
    ConversationList,
    StatusLine,
    memories_text,
)
from edgeagent.conversations import Conversations, title_of
from edgeagent.demo_tools import SUGGESTED_PROMPTS
from edgeagent.errors import EdgeAgentError, Interrupted


class ChatApp(App[None]):
    """The assistant. `make_agent` builds the agent (in a worker: loading a model takes a
    moment, and a failure shows the error screen instead of a traceback)."""

    CSS_PATH = "chat.tcss"
    TITLE = "edgeagent"
    BINDINGS = [
        Binding("escape", "cancel", "Stop"),
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("ctrl+l", "toggle_conversations", "Chats"),
        Binding("ctrl+r", "toggle_memories", "Memories"),
        Binding("ctrl+y", "copy_answer", "Copy"),
        Binding("ctrl+t", "toggle_dark", "Theme"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, make_agent: Callable[[], Agent], first_prompt: str = "") -> None:
        super().__init__()
        self.make_agent = make_agent
        self.first_prompt = first_prompt  # sent as soon as the model is loaded
        self.agent: Agent | None = None
        self.conversations: Conversations | None = None
        self.session: Session | None = None
        self.generating = False
        self._cancel = threading.Event()  # Stop was pressed: ask nothing more this turn

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            yield ConversationList(id="conversations")
            with Vertical(id="main"):
                yield ConversationView(id="log")
                yield Static(id="memories", classes="hidden")
                yield Input(placeholder="Loading the model…", id="prompt", disabled=True)
                yield StatusLine()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conversations").border_title = "conversations"
        self.query_one("#memories").border_title = "memories"
        self.query_one(StatusLine).show_state("loading the model…")
        if not self.is_headless and terminal_attached():
            self.set_interval(1.0, self._quit_if_terminal_gone)
        self._load()

    async def _quit_if_terminal_gone(self) -> None:
        """Closing the window is quitting. The hang-up signal does not always come (`make run`:
        make keeps it), and Textual's input thread then spins on the dead terminal at full CPU
        while a turn may still be generating."""
        if not terminal_attached():
            await self.action_quit()

    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        try:
            agent = self.make_agent()
            agent.renderer  # noqa: B018  (loads the model, reads its chat template)
            conversations = Conversations(agent.memory)
        except Exception as exc:  # shown on the error screen, whatever it is
            self.call_from_thread(self.push_screen, ErrorScreen(*reason_and_hint(exc)))
            return
        agent.confirm = ConfirmBridge(self, self._cancel, lambda: self.log_view.waiting())
        self.call_from_thread(self._agent_ready, agent, conversations)

    def _agent_ready(self, agent: Agent, conversations: Conversations) -> None:
        self.agent, self.conversations = agent, conversations
        self.sub_title = describe(agent)
        self.session = agent.session()
        prompt = self.query_one("#prompt", Input)
        prompt.disabled = False
        prompt.placeholder = f"Ask something, e.g. “{SUGGESTED_PROMPTS[0]}”"
        prompt.focus()
        self._welcome()
        self._refresh_conversations()
        self._show_context()
        self.query_one(StatusLine).show_state("ready")
        self.refresh_bindings()
        if self.first_prompt:
            prompt.value = self.first_prompt
            prompt.post_message(Input.Submitted(prompt, self.first_prompt))

    def _welcome(self) -> None:
        assert self.agent is not None
        names = ", ".join(t.name for t in self.agent.tools)
        text = Text()
        text.append("Tools: ", style="bold")
        text.append(names + "\n")
        text.append("Try: ", style="bold")
        text.append(" · ".join(SUGGESTED_PROMPTS))
        self.log_view.mount(Static(text, classes="welcome"))

    # ------------------------------------------------------------------ a turn

    @on(Input.Submitted, "#prompt")
    def _submit(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if not prompt or self.session is None:
            return
        if self.generating:
            self.notify("Still answering: press Escape to stop it first", severity="warning")
            return
        event.input.value = ""
        self.generating = True
        self.refresh_bindings()
        self._cancel.clear()
        self.log_view.start_turn(prompt)
        self.query_one(StatusLine).show_state("thinking…")
        self._generate(self.session, prompt)

    class AgentEvent(Message):
        """An event of the turn, from the worker (posted, so generation never waits for the
        screen; the message queue keeps them in order)."""

        def __init__(self, event: Event) -> None:
            super().__init__()
            self.event = event

    class TurnEnded(Message):
        def __init__(self, session: Session, error: Exception | None, stopped: bool) -> None:
            super().__init__()
            self.session = session
            self.error = error
            self.stopped = stopped  # by Escape: the session took the turn back

    @work(thread=True, exclusive=True, group="turn")
    def _generate(self, session: Session, prompt: str) -> None:
        error: Exception | None = None
        stopped = False
        try:
            for event in session.stream(prompt):
                self.post_message(self.AgentEvent(event))
        except Interrupted:  # Escape: the session took the turn back
            stopped = True
        except Exception as exc:  # the turn was taken back too; say why and go on
            error = exc
        self.post_message(self.TurnEnded(session, error, stopped))

    def on_chat_app_agent_event(self, message: AgentEvent) -> None:
        result = self.log_view.show(message.event)
        if result is not None:
            self.query_one(StatusLine).show_speed(result)

    def on_chat_app_turn_ended(self, message: TurnEnded) -> None:
        session, error, cancelled = message.session, message.error, message.stopped
        self.generating = False
        self.refresh_bindings()
        if cancelled or error is not None:
            self.log_view.end_turn("stopped" if cancelled else f"failed: {error}")
            self.query_one(StatusLine).show_state("stopped" if cancelled else "error")
            if error is not None:
                reason, hint = reason_and_hint(error)
                self.notify(reason + (f"\n{hint}" if hint else ""), severity="error")
        else:
            users = [m for m in session.messages if m.role == "user"]
            self.log_view.end_turn(None, users[-1].recalled if users else ())
            assert self.conversations is not None
            self.conversations.save(session)
            self._refresh_conversations()
        self._show_context()
        self._refresh_memories()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The chat's keys only once the model is loaded (not on the loading or error
        screen); Stop only while answering."""
        if action == "quit":  # the error screen has its own
            return not isinstance(self.screen, ErrorScreen)
        if action == "command_palette":
            return True
        if action == "cancel":
            return self.generating
        return self.agent is not None and not isinstance(self.screen, ErrorScreen)

    def action_cancel(self) -> None:
        if self.generating and self.agent is not None:
            self._cancel.set()
            self.agent.interrupt()
            self.query_one(StatusLine).show_state("stopping…")

    async def action_quit(self) -> None:
        if self.agent is not None:
            self.agent.interrupt()  # the worker's thread ends with its turn
        self.exit()

    def action_new_conversation(self) -> None:
        if self._busy() or self.agent is None:
            return
        self.session = self.agent.session()
        self.log_view.clear()
        self._welcome()
        self._show_context()
        self._refresh_memories()
        self.query_one("#conversations", ListView).index = None
        self.query_one("#prompt", Input).focus()

    @on(ListView.Selected, "#conversations")
    def _open(self, event: ListView.Selected) -> None:
        if self._busy() or self.agent is None or self.conversations is None:
            return
        assert isinstance(event.item, ConversationItem)
        agent = self.agent
        session = self.conversations.resume(agent, event.item.info.id)
        # the meter until the next reply: what the window holds now
        visible = session.window.visible(session.messages)
        session.context_tokens = len(agent.backend.tokenize(agent.render(visible)))
        self.session = session
        self.log_view.clear()
        self.log_view.replay(session)
        self._show_context()
        self._refresh_memories()
        self.query_one("#prompt", Input).focus()

    def action_delete_conversation(self) -> None:
        """Delete the conversation highlighted in the list when the list has focus, else the
        open one; after a yes."""
        if self._busy() or self.session is None or self.conversations is None:
            return
        listing = self.query_one("#conversations", ListView)
        item = listing.highlighted_child if listing.has_focus else None
        if isinstance(item, ConversationItem):
            target, title = item.info.id, item.info.title
        elif self.session.messages:
            target, title = self.session.id, title_of(self.session.messages)
        else:
            self.notify("This conversation is empty: nothing to delete")
            return

        def done(yes: bool | None) -> None:
            if not yes or self.conversations is None:
                return
            self.conversations.delete(target)
            if self.session is not None and self.session.id == target:
                self.action_new_conversation()
            self._refresh_conversations()
            self.notify("Conversation deleted")

        self.push_screen(AskScreen("Delete this conversation?", f"“{title}”"), done)

    def action_toggle_conversations(self) -> None:
        """Go to the conversation list (showing it if hidden); from the list, hide it."""
        listing = self.query_one("#conversations", ListView)
        if listing.has_focus:
            listing.add_class("hidden")
            self.query_one("#prompt", Input).focus()
        else:
            listing.remove_class("hidden")
            listing.focus()

    def action_toggle_memories(self) -> None:
        self.query_one("#memories").toggle_class("hidden")
        self._refresh_memories()

    def action_copy_answer(self) -> None:
        if not self.log_view.last_answer:
            self.notify("No answer to copy yet")
            return
        self.copy_to_clipboard(self.log_view.last_answer)
        self.notify(f"Copied the last answer ({len(self.log_view.last_answer)} characters)")

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "New conversation", "Start a new conversation", self.action_new_conversation
        )
        yield SystemCommand(
            "Delete conversation", "Delete this conversation", self.action_delete_conversation
        )
        yield SystemCommand("Copy last answer", "Copy the last answer", self.action_copy_answer)
        yield SystemCommand(
            "Show memories", "Memories recalled in this conversation", self.action_toggle_memories
        )
        yield SystemCommand(
            "Conversations", "Go to the conversation list", self.action_toggle_conversations
        )
        yield SystemCommand("Light/dark", "Switch between light and dark", self.action_toggle_dark)
        yield SystemCommand("Stop", "Stop the answer being written", self.action_cancel)

    # ------------------------------------------------------------------ helpers

    def _busy(self) -> bool:
        if self.generating:
            self.notify("Still answering: press Escape to stop it first", severity="warning")
        return self.generating

    @property
    def log_view(self) -> ConversationView:
        return self.query_one("#log", ConversationView)

    def _refresh_conversations(self) -> None:
        if self.conversations is None:
            return
        view = self.query_one("#conversations", ListView)
        view.clear()
        current = self.session.id if self.session else None
        infos = self.conversations.list()
        view.extend(ConversationItem(info) for info in infos)
        ids = [info.id for info in infos]
        view.index = ids.index(current) if current in ids else None

    def _show_context(self) -> None:
        if self.agent is None or self.session is None:
            return
        self.query_one(StatusLine).show_context(
            self.session.context_tokens,
            self.agent.backend.n_ctx,
            self.session.window.evicted_turns,
        )

    def _refresh_memories(self) -> None:
        panel = self.query_one("#memories", Static)
        if self.agent is None or self.session is None or panel.has_class("hidden"):
            return
        panel.update(memories_text(self.session.messages, self.agent.memory.stats()))


def reason_and_hint(exc: Exception) -> tuple[str, str]:
    """What went wrong and what to do, apart (str() of an EdgeAgentError holds both)."""
    if isinstance(exc, EdgeAgentError):
        return str(exc.args[0]), exc.hint
    return f"{type(exc).__name__}: {exc}", ""


def describe(agent: Agent) -> str:
    """Model · adapter · backend, for the header."""
    from edgeagent.models import is_default_adapter

    backend = agent.backend
    if agent.decoupled:
        adapter = "DualTune LoRAs"
    elif agent.adapter is None:
        adapter = "no LoRA"
    elif is_default_adapter(agent.adapter):
        adapter = "general LoRA"
    else:
        adapter = f"{agent.adapter.stem} LoRA"
    return f"{Path(backend.model_path).stem} · {adapter} · {backend.name}"


def terminal_attached() -> bool:
    """Whether stdin is still a live terminal: after a hang-up its file stays open but is no
    longer a terminal (tcgetattr fails with EIO)."""
    return sys.__stdin__ is not None and os.isatty(sys.__stdin__.fileno())
