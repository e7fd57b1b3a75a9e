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
    conn.executescript("DROP TABLE IF EXISTS messages; DROP TABLE IF EXISTS conversations;")
    conn.close()
    with MemoryIndex(db) as memory:
        assert Conversations(memory).list() == []
        assert memory.search("old note")[0].text == "an old note"


# The tables as edgeagent's memory index created them before they had a version (version 1).
V1_TABLES = """
CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, window_start INTEGER NOT NULL DEFAULT 0,
    evicted_turns INTEGER NOT NULL DEFAULT 0);
CREATE TABLE messages (conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    calls TEXT NOT NULL DEFAULT '[]', name TEXT NOT NULL DEFAULT '',
    recalled TEXT NOT NULL DEFAULT '', record TEXT, PRIMARY KEY (conversation_id, seq));
INSERT INTO conversations VALUES ('c1', 'Delete my files', 1.0, 2.0, 0, 0);
INSERT INTO messages VALUES ('c1', 0, 'user', 'Delete my files', '[]', '',
    '- my files are in ~/docs' || char(10) || '- the backup runs at 9', NULL);
INSERT INTO messages VALUES ('c1', 1, 'assistant', '',
    '[{"name": "delete_files", "arguments": {}}]', '', '', NULL);
INSERT INTO messages VALUES ('c1', 2, 'tool', 'The user declined to run delete_files.', '[]',
    'delete_files', '', '{"arguments": {}, "ok": false, "error": "the user declined to run delete_files", "duration_s": 0.0}');
INSERT INTO messages VALUES ('c1', 3, 'assistant', 'I did not delete anything.', '[]', '', '', NULL);
"""


def test_a_version_1_file_is_upgraded_and_resumes(tmp_path):
    """A memory file whose conversations an older edgeagent wrote: recalled memories as "- "
    lines, call records without a status. Opened, it is upgraded once, in place."""
    from edgeagent.conversations import SCHEMA_VERSION

    db = tmp_path / "v1.db"
    MemoryIndex(db).close()
    conn = sqlite3.connect(db)
    conn.executescript(V1_TABLES)
    conn.close()
    agent = agent_on(db, [])
    session = Conversations(agent.memory).resume(agent, "c1")
    assert session.messages[0].recalled == ("my files are in ~/docs", "the backup runs at 9")
    assert [(r.name, r.ok, r.status) for r in session.records] == [
        ("delete_files", False, "declined")
    ]
    assert session.messages[3].content == "I did not delete anything."
    version = agent.memory.query("SELECT value FROM meta WHERE key = 'conversations_version'")
    assert version == [(str(SCHEMA_VERSION),)]
    # a second opening finds it current and changes nothing
    again = agent_on(db, [])
    assert Conversations(again.memory).resume(again, "c1").messages == session.messages


def test_a_file_from_a_newer_edgeagent_is_refused(tmp_path):
    db = tmp_path / "new.db"
    with MemoryIndex(db) as memory:
        Conversations(memory)
        with memory.transaction() as conn:
            conn.execute("UPDATE meta SET value = '99' WHERE key = 'conversations_version'")
    with MemoryIndex(db) as memory, pytest.raises(EdgeAgentError, match="newer edgeagent"):
        Conversations(memory)


def test_titles_are_one_line_and_short():
    assert title_of([Message("user", "  two\nlines  ")]) == "two lines"
    assert len(title_of([Message("user", "x" * 200)])) == 48
    assert title_of([]) == "(empty)"
