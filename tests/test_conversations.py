"""Conversations saved in the memory file: list, resume, delete (scripted backend)."""

from __future__ import annotations

import sqlite3

import pytest

from edgeagent import Agent
from edgeagent.conversations import Conversations, title_of
from edgeagent.errors import EdgeAgentError
from edgeagent.memory import MemoryIndex
from edgeagent.wireformat import Message
from tests.test_agent_loop import ScriptedBackend, broken, call, set_timer


def agent_on(path, replies, **kw):
    return Agent([set_timer, broken], backend=ScriptedBackend(replies, **kw), memory=path)


def test_a_saved_conversation_resumes_with_its_messages_calls_and_window(tmp_path):
    db = tmp_path / "chat.db"
    replies = [call("set_timer", '{"minutes": 12, "label": "pasta"}'), "Timer set.", "It is 12."]
    agent = agent_on(db, replies)
    session = agent.session()
    session.send("Start a 12 minute timer for the pasta")
    session.window.start, session.window.evicted_turns = 0, 0
    store = Conversations(agent.memory)
    store.save(session)

    # another process, later: a new agent on the same file
    later = agent_on(db, ["Twelve minutes."])
    infos = Conversations(later.memory).list()
    assert [(i.id, i.title, i.messages) for i in infos] == [
        (session.id, "Start a 12 minute timer for the pasta", 4)
    ]
    resumed = Conversations(later.memory).resume(later, session.id)
    assert resumed.messages == session.messages
    assert [(r.name, r.arguments, r.result, r.ok) for r in resumed.records] == [
        ("set_timer", {"minutes": 12, "label": "pasta"}, "Timer set for 12 minutes.", True)
    ]
    assert resumed.send("How long was it?").answer == "Twelve minutes."
    # the model saw the earlier turn: the call and its result are in the prompt
    prompt = "".join(map(chr, later.backend.prompts[0]))  # type: ignore[attr-defined]
    assert "Timer set for 12 minutes." in prompt and "How long was it?" in prompt


def test_failed_calls_keep_their_error_and_the_window_position_survives(tmp_path):
    db = tmp_path / "chat.db"
    agent = agent_on(db, [call("broken", '{"x": 1}'), "It failed."])
    session = agent.session()
    session.send("break it")
    session.window.start, session.window.evicted_turns = 0, 3
    Conversations(agent.memory).save(session)
    resumed = Conversations(agent.memory).resume(agent, session.id)
    record = resumed.records[0]
    assert not record.ok and record.error == "broken failed: OSError: disk on fire"
    assert resumed.window.evicted_turns == 3


def test_saving_again_replaces_the_messages_and_the_newest_is_listed_first(tmp_path):
    agent = agent_on(tmp_path / "chat.db", ["One.", "Two.", "Three."])
    store = Conversations(agent.memory)
    first, second = agent.session(), agent.session()
    first.send("first question")
    store.save(first)
    second.send("second question")
    store.save(second)
    first.send("a follow-up")
    store.save(first)
    infos = store.list()
    assert [i.id for i in infos] == [first.id, second.id]
    assert infos[0].messages == 4 and infos[0].title == "first question"


def test_delete_removes_the_conversation_and_its_evicted_turns_but_not_notes(tmp_path):
    agent = agent_on(tmp_path / "chat.db", ["Sure."])
    memory: MemoryIndex = agent.memory
    session = agent.session()
    session.send("hello")
    store = Conversations(memory)
    store.save(session)
    memory.add("User: an evicted turn", kind="turn", metadata={"session": session.id})
    memory.add("User: another conversation's turn", kind="turn", metadata={"session": "other"})
    memory.add("buy milk", kind="note")
    assert store.delete(session.id)
    assert store.list() == []
    assert sorted(h.text for h in memory.search("turn milk", k=10)) == [
        "User: another conversation's turn",
        "buy milk",
    ]
    assert not store.delete(session.id)
    with pytest.raises(EdgeAgentError, match="no conversation"):
        store.resume(agent, session.id)


def test_an_old_memory_file_gains_the_conversation_tables(tmp_path):
    db = tmp_path / "old.db"
    with MemoryIndex(db) as memory:
        memory.add("an old note")
    conn = sqlite3.connect(db)
    conn.executescript("DROP TABLE messages; DROP TABLE conversations;")
    conn.close()
    with MemoryIndex(db) as memory:
        assert Conversations(memory).list() == []
        assert memory.search("old note")[0].text == "an old note"


def test_titles_are_one_line_and_short():
    assert title_of([Message("user", "  two\nlines  ")]) == "two lines"
    assert len(title_of([Message("user", "x" * 200)])) == 48
    assert title_of([]) == "(empty)"
