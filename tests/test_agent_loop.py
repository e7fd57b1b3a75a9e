"""The agent loop's logic, driven by a scripted backend (the real model runs in test_model.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgeagent import Agent, tool
from edgeagent.agent import TextDelta, ToolCallFinished, ToolCallStarted
from edgeagent.backends import Backend, GenerationStats, SamplingParams
from edgeagent.errors import ContextOverflowError


class ScriptedBackend:
    """Replies from a script, one per generation; records the grammar it was given. Asked for
    one more call (a continuation, edgeagent.replies.propose_calls) it writes what `proposals`
    holds, else nothing, and records the grammar it was given in `continued`."""

    name = "scripted"
    model_path = "scripted"

    def __init__(self, replies: list[str], n_ctx: int = 4096) -> None:
        self.replies = list(replies)
        self.n_ctx = n_ctx
        self.grammars: list[str | None] = []
        self.prompts: list[list[int]] = []
        self.proposals: list[str] = []
        self.continued: list[str | None] = []

    def tokenize(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def chat_template(self) -> str | None:
        return None

    def special_tokens(self) -> tuple[str, str]:
        return "", ""

    def generate(
        self, prompt, *, grammar, sampling: SamplingParams, max_tokens, stats: GenerationStats
    ) -> Iterator[str]:
        if sampling.continues:
            self.continued.append(grammar)
            yield from self.proposals[:1]
            del self.proposals[:1]
            return
        self.grammars.append(grammar)
        self.prompts.append(prompt)
        stats.prompt_tokens = len(prompt)
        reply = self.replies.pop(0)
        for i in range(0, len(reply), 7):
            stats.completion_tokens += 1
            yield reply[i : i + 7]


calls_made: list[int] = []


@tool
def set_timer(minutes: int, label: str = "") -> str:
    """Start a countdown timer."""
    calls_made.append(minutes)
    return f"Timer set for {minutes} minutes."


@tool
def broken(x: int) -> str:
    """Always fails."""
    raise OSError("disk on fire")


def call(name: str, args: str) -> str:
    return f'<tool_call>[{{"name": "{name}", "arguments": {args}}}]</tool_call>'


def test_backend_protocol_is_satisfied():
    assert isinstance(ScriptedBackend([]), Backend)


def test_call_then_answer():
    calls_made.clear()
    backend = ScriptedBackend(
        [call("set_timer", '{"minutes": 12, "label": "pasta"}'), "Your timer is set."]
    )
    result = Agent([set_timer], backend=backend).run("Start a 12 minute timer for the pasta")
    assert result.answer == "Your timer is set."
    assert [(c.name, c.arguments, c.ok) for c in result.tool_calls] == [
        ("set_timer", {"minutes": 12, "label": "pasta"}, True)
    ]
    assert result.tool_calls[0].result == "Timer set for 12 minutes."
    assert calls_made == [12]
    assert result.steps == 2 and result.usage.generations == 2
    # the second prompt carries the call and its result
    second = "".join(map(chr, backend.prompts[1]))
    assert '"result": "Timer set for 12 minutes."' in second


def test_validation_error_goes_back_to_the_model():
    calls_made.clear()
    backend = ScriptedBackend([call("set_timer", '{"minutes": "soon"}'), "Sorry."])
    result = Agent([set_timer], backend=backend, constrained=False).run("timer")
    assert not result.tool_calls[0].ok
    assert "minutes: Input should be a valid integer" in result.tool_calls[0].result
    assert calls_made == []  # the function never ran
    assert "valid integer" in "".join(map(chr, backend.prompts[1]))


def test_tool_exception_goes_back_to_the_model():
    backend = ScriptedBackend([call("broken", '{"x": 1}'), "It failed."])
    result = Agent([broken], backend=backend).run("go")
    assert result.tool_calls[0].error == "broken failed: OSError: disk on fire"
    assert result.answer == "It failed."


def test_step_limit_forces_an_answer():
    looping = [call("set_timer", '{"minutes": 1}')] * 2 + ["Giving up."]
    backend = ScriptedBackend(looping)
    result = Agent([set_timer], backend=backend, max_steps=3).run("loop")
    assert result.answer == "Giving up." and result.steps == 3
    assert "calls" in backend.grammars[0] and "calls" not in backend.grammars[2]


def test_step_limit_without_grammar_reports_it():
    backend = ScriptedBackend([call("set_timer", '{"minutes": 1}')] * 2)
    result = Agent([set_timer], backend=backend, max_steps=2, constrained=False).run("loop")
    assert result.hit_step_limit and result.answer == ""


def test_unknown_tool_without_grammar_is_an_error_result():
    backend = ScriptedBackend([call("launch_rocket", "{}"), "ok"])
    result = Agent([set_timer], backend=backend, constrained=False).run("go")
    assert not result.tool_calls[0].ok
    assert "unknown tool 'launch_rocket'" in result.tool_calls[0].result
    assert result.answer == "ok"


def test_streaming_events_in_order():
    backend = ScriptedBackend([call("set_timer", '{"minutes": 2}'), "Done."])
    events = list(Agent([set_timer], backend=backend).stream("timer"))
    kinds = [type(e).__name__ for e in events]
    assert (
        kinds.index("ToolCallStarted")
        < kinds.index("ToolCallFinished")
        < kinds.index("RunFinished")
    )
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert {d.kind for d in deltas} == {"call", "answer"}
    assert "".join(d.text for d in deltas if d.kind == "answer") == "Done."
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert started.call.name == "set_timer" and started.call.arguments == {"minutes": 2}
    assert finished.record is events[-1].result.tool_calls[0] and finished.record.ok


def test_session_keeps_history():
    backend = ScriptedBackend(["Hi!", "You said hello."])
    session = Agent([set_timer], backend=backend).session()
    session.send("hello")
    session.send("what did I say?")
    assert [m.role for m in session.messages] == ["user", "assistant", "user", "assistant"]
    assert "hello" in "".join(map(chr, backend.prompts[1]))


def test_prompt_too_long_is_a_clear_error_and_loses_nothing():
    backend = ScriptedBackend(["Hi!"], n_ctx=600)
    session = Agent([set_timer], backend=backend).session()
    with pytest.raises(ContextOverflowError, match="tokens but the context holds 600"):
        session.send("x" * 1000)
    assert session.messages == []  # the failed turn was rolled back


def test_a_call_repeated_across_steps_is_not_run_again():
    calls_made.clear()
    same = call("set_timer", '{"minutes": 3}')
    backend = ScriptedBackend([same, same, "Timer running."])
    result = Agent([set_timer], backend=backend, max_steps=4).run("timer")
    assert calls_made == [3] and len(result.tool_calls) == 1
    assert result.answer == "Timer running." and result.duplicates_dropped == 1
    assert "calls" not in backend.grammars[2]  # after the repeat, only an answer is allowed


def test_tool_choice_required_and_none():
    backend = ScriptedBackend([call("set_timer", '{"minutes": 1}'), "ok"])
    Agent([set_timer], backend=backend, tool_choice="required").run("go")
    assert "answer" not in backend.grammars[0].split("\n")[0]  # first reply: calls only
    assert "calls" in backend.grammars[1]
    backend = ScriptedBackend(["just text"])
    Agent([set_timer], backend=backend, tool_choice="none").run("go")
    assert "calls" not in backend.grammars[0]


def test_a_call_cut_off_by_max_tokens_is_not_an_answer():
    cut = '<tool_call>[{"name": "set_timer", "arguments": {"minutes": 1, "label": "aaaa'
    backend = ScriptedBackend([cut, "Sorry, that did not work."])
    result = Agent([set_timer], backend=backend).run("timer")
    assert result.answer == "Sorry, that did not work." and result.tool_calls == []
    assert any("incomplete call" in p for p in result.problems)
    assert "calls" not in backend.grammars[1]


@tool(effects="write")
def save_note(text: str) -> str:
    """Save a note."""
    calls_made.append(len(text))
    return "saved"


def test_confirm_is_asked_for_tools_with_side_effects_and_a_no_is_returned_to_the_model():
    calls_made.clear()
    asked: list[str] = []

    def confirm(call, tool_):
        asked.append(f"{call.name}:{tool_.effects}")
        return False

    backend = ScriptedBackend([call("save_note", '{"text": "milk"}'), "Not saved."])
    result = Agent([save_note], backend=backend, confirm=confirm).run("note milk")
    assert asked == ["save_note:write"]
    assert calls_made == []  # declined: never ran
    record = result.tool_calls[0]
    assert not record.ok and record.error == "the user declined to run save_note"
    assert "declined" in "".join(map(chr, backend.prompts[1]))
    assert result.answer == "Not saved."


def test_confirm_is_not_asked_for_read_only_tools_and_a_yes_runs_the_tool():
    calls_made.clear()
    asked: list[str] = []

    def confirm(call, tool_):
        asked.append(call.name)
        return True

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return "found"

    replies = [
        '<tool_call>[{"name": "lookup", "arguments": {"q": "a"}}, '
        '{"name": "save_note", "arguments": {"text": "ab"}}]</tool_call>',
        "Done.",
    ]
    backend = ScriptedBackend(replies)
    result = Agent([lookup, save_note], backend=backend, confirm=confirm).run("go")
    assert asked == ["save_note"]
    assert calls_made == [2] and all(c.ok for c in result.tool_calls)


def test_interrupt_from_another_thread_takes_the_turn_back():
    from edgeagent.errors import Interrupted

    backend = ScriptedBackend([call("set_timer", '{"minutes": 3}'), "Done.", "Second answer."])
    agent = Agent([set_timer], backend=backend)
    session = agent.session()
    events = session.stream("timer")
    next(events)  # the first piece of the call
    agent.interrupt()  # what another thread (a UI's Stop key) does
    with pytest.raises(Interrupted):
        list(events)
    assert session.messages == [] and session.records == []
    # the next turn runs normally: an interrupt stops one turn, not the agent
    backend.replies = ["Second answer."]
    assert session.send("hello").answer == "Second answer."
    assert [m.role for m in session.messages] == ["user", "assistant"]


def test_context_tokens_counts_the_last_prompt_and_reply():
    backend = ScriptedBackend(["Hi there."])
    session = Agent([set_timer], backend=backend).session()
    session.send("hello")
    assert session.context_tokens == len(backend.prompts[0]) + 2  # two 7-char pieces
