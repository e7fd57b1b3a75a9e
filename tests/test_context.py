"""The sliding window: eviction into memory, recall, context shift, long conversations."""

from __future__ import annotations

import pytest

from edgeagent import Agent
from edgeagent.backends import GenerationStats, SamplingParams
from edgeagent.context import ContextWindow, split_turns, turn_text
from edgeagent.memory import MemoryIndex
from edgeagent.wireformat import Message, ToolCall
from tests.test_agent_loop import ScriptedBackend, call, set_timer


def test_turns_keep_calls_with_their_results():
    msgs = [
        Message("user", "a"),
        Message("assistant", calls=[ToolCall("set_timer", {"minutes": 1})]),
        Message("tool", "ok", name="set_timer"),
        Message("assistant", "done"),
        Message("user", "b"),
        Message("assistant", "hi"),
    ]
    turns = split_turns(msgs)
    assert [len(t) for t in turns] == [4, 2]
    assert "Result of set_timer: ok" in turn_text(turns[0])


def test_window_evicts_oldest_whole_turns_into_memory():
    memory = MemoryIndex()
    window = ContextWindow(memory, "s1")
    msgs = []
    for i in range(10):
        msgs += [Message("user", f"question {i} " + "x " * 20), Message("assistant", f"answer {i}")]
    count = lambda ms: sum(len(m.content.split()) for m in ms)  # noqa: E731 (a token stand-in)
    used = window.fit(msgs, count, budget=70)
    visible = window.visible(msgs)
    assert used <= 70 and visible[0].role == "user" and visible[-1].content == "answer 9"
    assert window.evicted_turns == 10 - len(visible) // 2
    assert memory.stats()["by_kind"] == {"turn": window.evicted_turns}
    assert "question 0" in memory.search("question 0", k=1)[0].text


def test_window_never_evicts_the_current_turn():
    window = ContextWindow(None, "s")
    msgs = [Message("user", "old"), Message("assistant", "a"), Message("user", "new " * 100)]
    window.fit(msgs, lambda ms: sum(len(m.content.split()) for m in ms), budget=10)
    assert [m.content for m in window.visible(msgs)] == ["new " * 100]


def test_recall_is_bounded_and_rendered_with_the_user_turn():
    memory = MemoryIndex()
    for i in range(5):
        memory.add(f"My locker code is 44{i}7 " + "padding " * 40, kind="turn")
    window = ContextWindow(memory, "s")
    slot = window.recall("what is my locker code")
    rendered = "\n".join(f"- {m}" for m in slot)
    assert len(slot) <= 3 and len(rendered) <= window.settings.recall_chars + 10
    backend = ScriptedBackend(["Noted."])
    agent = Agent([set_timer], backend=backend, memory=memory)
    agent.run("what is my locker code")
    assert "Recalled from earlier" in "".join(map(chr, backend.prompts[0]))


def test_scripted_long_conversation_stays_in_budget():
    replies = [call("set_timer", '{"minutes": 1}'), "ok"] * 60
    backend = ScriptedBackend(replies, n_ctx=3000)  # one token per character
    session = Agent([set_timer], backend=backend, max_tokens=64).session()
    for i in range(60):
        session.send(f"turn {i}: start a timer")
    assert max(len(p) for p in backend.prompts) <= 3000 - 64
    assert session.window.evicted_turns > 10
    # no tool result was separated from its call
    for prompt in backend.prompts:
        text = "".join(map(chr, prompt))
        assert text.count("<tool_call>") >= text.count('"result"')


@pytest.mark.model
def test_context_shift_gives_the_same_continuation_as_a_fresh_prefill(llama_backend):
    agent = Agent([], backend=llama_backend, tool_choice="none")
    turns = [Message("user", f"Tell me fact number {i} about the sea.") for i in range(4)]
    history = []
    for t in turns:
        history += [t, Message("assistant", "The sea is large and deep.")]
    question = [Message("user", "Summarize what you said.")]
    full = llama_backend.tokenize(agent.render(history + question))
    shortened = llama_backend.tokenize(agent.render(history[4:] + question))
    greedy = SamplingParams()

    def continuation(prompt):
        return "".join(
            llama_backend.generate(
                prompt, grammar=None, sampling=greedy, max_tokens=12, stats=GenerationStats()
            )
        )

    continuation(full)  # fills the cache with the whole history
    shifts = llama_backend.shifts
    stats = GenerationStats()
    shifted = "".join(
        llama_backend.generate(shortened, grammar=None, sampling=greedy, max_tokens=12, stats=stats)
    )
    assert llama_backend.shifts == shifts + 1
    assert stats.cached_tokens > len(shortened) - 20  # only the tail was evaluated
    llama_backend._llm.reset()
    assert continuation(shortened) == shifted
