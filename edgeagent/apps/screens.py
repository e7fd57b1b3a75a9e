"""Modal screens: a yes/no question (a tool's side effects, deleting a conversation) and the
error screen shown when the model cannot load."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Static


class AskScreen(ModalScreen[bool]):
    """A question with a yes and a no; y/n or the buttons answer, escape says no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: Text | str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="ask"):
            yield Static(Text(self.title_text, style="bold"), id="ask-title")
            yield Static(self.body, id="ask-body")
            with Horizontal(id="ask-buttons"):
                yield Button(f"{self.yes} (y)", variant="success", id="yes")
                yield Button(f"{self.no} (n)", variant="error", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # Enter on a stray key press must not say yes

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ErrorScreen(Screen[None]):
    """Why the assistant cannot start, and what to do; q quits."""

    BINDINGS = [Binding("q,escape,enter", "leave", "Quit")]

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__()
        self.reason = reason
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="error"):
            yield Static(Text("The assistant could not start", style="bold"), id="error-title")
            yield Static(Text(self.reason), id="error-reason")
            if self.hint:
                yield Static(Text(f"What to do: {self.hint}"), id="error-hint")
        yield Footer()

    def action_leave(self) -> None:
        self.app.exit(return_code=1)
