"""The terminal assistant (edgeagent chat) driven by Textual's Pilot: the real default model for
the demo prompt, a scripted backend where a test needs a given reply; snapshots of the main
screens at 80x24 (pytest-textual-snapshot; `pytest --snapshot-update` after a deliberate change)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.widgets import Input, ListView

from edgeagent import Agent, tool
from edgeagent.apps.chat import ChatApp
from edgeagent.apps.screens import AskScreen, ErrorScreen
from edgeagent.apps.widgets import AnswerMessage, StatusLine, ToolCallCard, UserMessage
from edgeagent.conversations import Conversations
from edgeagent.demo_tools import DEMO_TOOLS
from edgeagent.errors import ModelFileError
from tests.test_agent_loop import ScriptedBackend, broken, call, set_timer

ran: list[str] = []


@tool(effects="write")
def save_note(text: str) -> str:
    """Save a note on this device."""
    ran.append(text)
    return f"Saved: {text}"


def scripted(replies: list[str], tools: list[Any] | None = None, **kw: Any) -> Callable[[], Agent]:
    def make() -> Agent:
        backend = kw.pop("backend", None) or ScriptedBackend(replies)
        return Agent(tools or [set_timer, save_note, broken], backend=backend, **kw)

    return make


def run_async(test: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(test(*args, **kwargs))

    return wrapper


async def until(pilot: Any, condition: Callable[[], Any], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the app did not get there in time")
        await pilot.pause(0.05)


async def ready(pilot: Any) -> ChatApp:
    app = pilot.app
    await until(pilot, lambda: app.session is not None)
    return app


async def ask(pilot: Any, prompt: str) -> None:
    app = pilot.app
    app.query_one("#prompt", Input).value = prompt
    await pilot.press("enter")
    await until(pilot, lambda: app.generating or app.query(AnswerMessage))


async def turn(pilot: Any, prompt: str) -> None:
    await ask(pilot, prompt)
    await until(pilot, lambda: not pilot.app.generating)


@pytest.mark.model
@run_async
async def test_the_demo_prompt_shows_a_tool_call_card_with_the_real_model(tmp_path):
    def make() -> Agent:
        return Agent(DEMO_TOOLS, memory=tmp_path / "chat.db", max_tokens=64)

    app = ChatApp(make)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.sub_title == "SmolLM2-135M-Instruct.Q4_1 · general LoRA · llama.cpp"
        await ask(pilot, "Start a 12 minute timer for the pasta")
        await until(pilot, lambda: isinstance(app.screen, AskScreen), seconds=600)
        # set_timer writes to the device: the app asks first
        await until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press("y")
        await until(pilot, lambda: not app.generating, seconds=600)
        card = app.query_one(ToolCallCard)
        assert card.call.name == "set_timer" and card.call.arguments["minutes"] == 12
        assert card.record is not None and card.record.ok and card.has_class("-ok")
        assert "12 minutes" in card.record.result
        assert app.query(AnswerMessage)
        status = str(app.query_one(StatusLine).content)
        assert "tok/s" in status and "TTFT" in status and "/2048" in status
        # the turn is saved: it is in the conversation list
        assert len(app.query_one("#conversations", ListView)) == 1


@run_async
async def test_a_declined_tool_does_not_run_and_its_card_says_so():
    ran.clear()
    app = ChatApp(scripted([call("save_note", '{"text": "milk"}'), "I did not save it."]))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "Note: milk")
        await until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press("n")
        await until(pilot, lambda: not app.generating)
        card = app.query_one(ToolCallCard)
        assert card.has_class("-declined") and "declined" in str(card.border_subtitle)
        assert ran == []
        assert app.query_one(AnswerMessage).text == "I did not save it."


@run_async
async def test_an_accepted_tool_runs():
    ran.clear()
    app = ChatApp(scripted([call("save_note", '{"text": "milk"}'), "Saved."]))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "Note: milk")
        await until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.click("#yes")
        await until(pilot, lambda: not app.generating)
        assert ran == ["milk"] and app.query_one(ToolCallCard).has_class("-ok")


@run_async
async def test_a_tool_that_raises_shows_its_error_and_the_conversation_goes_on():
    replies = [call("broken", '{"x": 1}'), "It broke.", "Hello again."]
    app = ChatApp(scripted(replies))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await turn(pilot, "break something")
        card = app.query_one(ToolCallCard)
        assert card.has_class("-error") and "disk on fire" in str(card.render())
        await turn(pilot, "hello")
        answers = [a.text for a in app.query(AnswerMessage)]
        assert answers == ["It broke.", "Hello again."]
        assert [m.role for m in app.session.messages] == [
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "assistant",
        ]


class EndlessBackend(ScriptedBackend):
    """Its first reply never ends on its own: distinct words (a repeated word would be cut by
    the answer-loop check) one every 50 ms until the turn is stopped, or a 300 s hang guard.
    Later replies are scripted."""

    def generate(self, prompt, **kw: Any) -> Iterator[str]:
        if len(self.prompts) > 0:
            yield from super().generate(prompt, **kw)
            return
        self.prompts.append(prompt)
        for i in range(6000):
            time.sleep(0.05)
            yield f"word{i} "


@run_async
async def test_escape_stops_a_generation_and_the_turn_is_not_kept(tmp_path):
    make = scripted([], backend=EndlessBackend(["Short."]), memory=None)
    app = ChatApp(make)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await ask(pilot, "tell me a long story")
        await until(pilot, lambda: app.query(AnswerMessage))
        await pilot.press("escape")
        await until(pilot, lambda: not app.generating)
        answer = app.query_one(AnswerMessage)
        assert answer.border_subtitle == "stopped" and answer.text.startswith("word0")
        assert app.session.messages == []
        assert "not kept" in str(app.query_one(UserMessage).border_subtitle)
        assert len(app.query_one("#conversations", ListView)) == 0
        # the app goes on: the next prompt gets its answer
        await turn(pilot, "something short")
        assert app.query(AnswerMessage).last().text == "Short."


@run_async
async def test_conversations_are_listed_resumed_and_deleted(tmp_path):
    db = tmp_path / "chat.db"
    app = ChatApp(scripted(["First answer.", "Second answer."], memory=db))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await turn(pilot, "first question")
        first = app.session.id
        await pilot.press("ctrl+n")
        assert not app.query(UserMessage)
        await turn(pilot, "second question")
        listing = app.query_one("#conversations", ListView)
        assert len(listing) == 2
        # Ctrl+L goes to the list, which highlights its first entry (the newest)
        await pilot.press("ctrl+l")
        assert listing.has_focus and listing.index == 0
        # the older one is second in the list; open it
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.session.id == first)
        assert [str(u.render()) for u in app.query(UserMessage)] == ["first question"]
        assert app.query_one(AnswerMessage).text == "First answer."
        # delete the other one: highlighted in the focused list, the Delete key
        listing.focus()
        listing.index = 0
        await pilot.press("delete")
        await until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press("y")
        await until(pilot, lambda: len(listing) == 1)
        # the open conversation stays open
        assert app.session.id == first
    with Agent([], backend=ScriptedBackend([]), memory=db).memory as memory:
        assert [i.title for i in Conversations(memory).list()] == ["first question"]


@run_async
async def test_copy_theme_memories_and_the_command_palette(tmp_path):
    app = ChatApp(scripted(["The answer is 42."], memory=tmp_path / "chat.db"))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.agent.memory.add("the secret number is 42", kind="note")
        await turn(pilot, "what is the secret number?")
        assert "1 memory recalled" in str(app.query_one(UserMessage).border_subtitle)
        await pilot.press("ctrl+y")
        assert app.clipboard == "The answer is 42."
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark
        await pilot.press("ctrl+r")
        panel = app.query_one("#memories")
        assert not panel.has_class("hidden") and "secret number is 42" in str(panel.render())
        await pilot.press("ctrl+p")
        await pilot.press(*"new conversation")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: not app.query(UserMessage))


@run_async
async def test_a_model_that_fails_to_load_shows_the_error_screen(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all" * 10)
    app = ChatApp(lambda: Agent(DEMO_TOOLS, model=bad))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorScreen))
        await until(pilot, lambda: app.screen.query("#error-reason"))
        text = str(app.screen.query_one("#error-reason").render())
        assert "model.gguf" in text and "Traceback" not in text
        await pilot.press("q")
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 1


# ---------------------------------------------------------------------------- snapshots


@pytest.fixture
def saved_conversation(tmp_path, monkeypatch):
    """A memory file holding one conversation with a tool call, saved at a fixed time."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr("edgeagent.conversations.time.time", lambda: 1_790_000_000.0)
    db = tmp_path / "chat.db"
    replies = [call("set_timer", '{"minutes": 12, "label": "pasta"}'), "Your pasta timer is set."]
    agent = Agent([set_timer, save_note], backend=ScriptedBackend(replies), memory=db)
    session = agent.session("snapshot")
    session.send("Start a 12 minute timer for the pasta")
    session.records[0].duration_s = 0.004
    Conversations(agent.memory).save(session)
    agent.memory.close()
    yield db
    monkeypatch.undo()
    time.tzset()


def resumed_app(db, replies: list[str] | None = None) -> ChatApp:
    return ChatApp(scripted(replies or [], memory=db))


async def open_saved(pilot: Any) -> None:
    app = await ready(pilot)
    listing = app.query_one("#conversations", ListView)
    listing.focus()
    listing.index = 0
    await pilot.press("enter")
    await until(pilot, lambda: app.query(ToolCallCard) and app.query_one(ToolCallCard).record)
    prompt = app.query_one("#prompt", Input)
    prompt.cursor_blink = False  # a blinking cursor is on or off by chance in a screenshot
    prompt.focus()
    await pilot.pause(0.2)


def test_snapshot_a_conversation_with_a_tool_call(snap_compare, saved_conversation):
    assert snap_compare(resumed_app(saved_conversation), run_before=open_saved)


def test_snapshot_light_theme(snap_compare, saved_conversation):
    async def light(pilot: Any) -> None:
        await open_saved(pilot)
        await pilot.press("ctrl+t")

    assert snap_compare(resumed_app(saved_conversation), run_before=light)


def test_snapshot_memories_panel(snap_compare, saved_conversation):
    async def memories(pilot: Any) -> None:
        await open_saved(pilot)
        await pilot.press("ctrl+r")

    assert snap_compare(resumed_app(saved_conversation), run_before=memories)


def test_snapshot_confirmation(snap_compare, saved_conversation):
    async def confirming(pilot: Any) -> None:
        await open_saved(pilot)
        await ask(pilot, "Save a note: buy milk")
        await until(pilot, lambda: isinstance(pilot.app.screen, AskScreen))
        await pilot.pause(0.2)

    app = resumed_app(saved_conversation, [call("save_note", '{"text": "buy milk"}'), "Saved."])
    assert snap_compare(app, run_before=confirming)


def test_snapshot_error_screen(snap_compare):
    def fail() -> Agent:  # the reason of a real failure names a temporary path
        raise ModelFileError(
            "model.gguf is not a GGUF file (it starts with b'xxxx', not b'GGUF')",
            hint="edgeagent runs GGUF models; convert others with `edgeagent export`",
        )

    async def failed(pilot: Any) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, ErrorScreen))

    assert snap_compare(ChatApp(fail), run_before=failed)


# ---------------------------------------------------------------------------- a real terminal

KEEPS_THE_HANGUP = """
import signal, subprocess, sys
signal.signal(signal.SIGHUP, lambda *_: None)  # as make does: the child never gets SIGHUP
child = subprocess.Popen(sys.argv[1:])
print("CHILD", child.pid, flush=True)
sys.exit(child.wait())
"""


@pytest.mark.model
@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_closing_the_terminal_quits_the_chat_even_without_a_hangup_signal(tmp_path):
    """`make run` in a terminal window that is closed: make keeps the SIGHUP, and the chat
    (Textual's input thread spinning on the dead terminal) ran on at full CPU."""
    import pty
    import re
    import select

    command = [sys.executable, "-c", KEEPS_THE_HANGUP, sys.executable, "-m", "edgeagent", "chat"]
    leader, fd = pty.fork()
    if leader == 0:  # the child: a new session, the pty its controlling terminal
        os.environ["EDGEAGENT_HOME"] = str(tmp_path)
        os.execv(sys.executable, command)
    seen = b""
    deadline = time.monotonic() + 120  # a hang guard; the screen is up in seconds
    try:
        while b"Tools:" not in seen and time.monotonic() < deadline:  # the model is loaded
            if select.select([fd], [], [], 1.0)[0]:
                seen += os.read(fd, 65536)
        found = re.search(rb"CHILD (\d+)", seen)
        assert found and b"Tools:" in seen, seen[-2000:]
        chat = int(found.group(1))
        os.close(fd)  # the window closes
        while time.monotonic() < deadline:
            if os.waitpid(leader, os.WNOHANG)[0]:  # the leader exits once the chat has
                break
            time.sleep(0.2)
        else:
            os.kill(chat, 9)
            pytest.fail("the chat ran on after its terminal closed")
        with pytest.raises(ProcessLookupError):
            os.kill(chat, 0)
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(leader, 9)  # whatever failed above, nothing is left running
            os.waitpid(leader, 0)
