"""Conversations kept in the memory file: listed, saved after each turn, resumed, deleted.

A conversation is a session's messages, its tool-call records and where its context window
starts, so a resumed conversation evicts nothing twice and recalls what it evicted before.
Every save is one transaction: a killed process leaves the last finished turn.

The tables are this module's own, versioned in the memory file's meta table
(`conversations_version`); a file written by an older edgeagent is upgraded when it is opened,
in one transaction, by the migrations below (version 1: the tables the memory index created
before they had a version of their own).

    store = Conversations(agent.memory)
    session = agent.session()
    session.send("Start a 12 minute timer")
    store.save(session)
    later = store.resume(agent, session.id)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeagent.errors import EdgeAgentError
from edgeagent.memory import MemoryIndex
from edgeagent.results import ToolCallRecord
from edgeagent.wireformat import Message, ToolCall

if TYPE_CHECKING:
    from edgeagent.agent import Agent, Session

TITLE_CHARS = 48
SCHEMA_VERSION = 2
_VERSION_KEY = "conversations_version"

_TABLES = (
    """CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    window_start INTEGER NOT NULL DEFAULT 0,
    evicted_turns INTEGER NOT NULL DEFAULT 0
)""",
    """CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    calls TEXT NOT NULL DEFAULT '[]',
    name TEXT NOT NULL DEFAULT '',
    recalled TEXT NOT NULL DEFAULT '[]',
    record TEXT,
    PRIMARY KEY (conversation_id, seq)
)""",
)


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Version 2: recalled memories as a JSON list (version 1 kept "- " lines of text), and a
    call record's status (version 1 kept ok and the error's text)."""
    rows = conn.execute("SELECT rowid, recalled, record FROM messages").fetchall()
    for rowid, recalled, record in rows:
        memories = [line[2:] for line in recalled.splitlines() if line.startswith("- ")]
        fields = json.loads(record) if record else None
        if fields is not None:
            error = fields.get("error") or ""
            declined = error.startswith("the user declined") or " was not run: " in error
            fields["status"] = "ran" if fields.get("ok", True) else (
                "declined" if declined else "error"
            )  # fmt: skip
        conn.execute(
            "UPDATE messages SET recalled = ?, record = ? WHERE rowid = ?",
            (json.dumps(memories, ensure_ascii=False),
             json.dumps(fields, ensure_ascii=False) if fields is not None else None, rowid),
        )  # fmt: skip


#: MIGRATIONS[n] upgrades a file from version n to n + 1
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}


def ensure_schema(memory: MemoryIndex) -> None:
    """Create the tables, or upgrade them to SCHEMA_VERSION, in one transaction."""
    with memory.transaction() as conn:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (_VERSION_KEY,)).fetchone()
        if row is not None:
            version = int(row[0])
        else:  # an older file has the tables but no version of theirs: version 1
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages'").fetchone()
            version = 1 if found else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise EdgeAgentError(
                f"{memory.path}: its conversations were written by a newer edgeagent "
                f"(version {version}; this one reads up to {SCHEMA_VERSION})",
                hint="upgrade edgeagent, or use another memory file",
            )
        for statement in _TABLES:
            conn.execute(statement)
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](conn)
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            (_VERSION_KEY, str(SCHEMA_VERSION)),
        )


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    title: str
    created_at: float
    updated_at: float
    messages: int


class Conversations:
    """The conversation list of one memory file."""

    def __init__(self, memory: MemoryIndex) -> None:
        self.memory = memory
        ensure_schema(memory)

    def list(self) -> list[ConversationInfo]:
        """Every saved conversation, the most recently used first."""
        rows = self.memory.query(
            "SELECT c.id, c.title, c.created_at, c.updated_at, count(m.seq) FROM conversations c "
            "LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id "
            "ORDER BY c.updated_at DESC"
        )
        return [ConversationInfo(*row) for row in rows]

    def save(self, session: Session) -> None:
        """Write the session as it is now (its messages replace those saved before)."""
        if not session.messages:
            return
        records = iter(session.records)
        rows = []
        for seq, msg in enumerate(session.messages):
            record = next(records, None) if msg.role == "tool" else None
            rows.append(
                (
                    session.id,
                    seq,
                    msg.role,
                    msg.content,
                    json.dumps([c.to_dict() for c in msg.calls], ensure_ascii=False),
                    msg.name,
                    json.dumps(list(msg.recalled), ensure_ascii=False),
                    json.dumps(_record_fields(record), ensure_ascii=False) if record else None,
                )
            )
        now = time.time()
        window = session.window
        with self.memory.transaction() as conn:
            conn.execute(
                "INSERT INTO conversations(id, title, created_at, updated_at, window_start, "
                "evicted_turns) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "updated_at = excluded.updated_at, window_start = excluded.window_start, "
                "evicted_turns = excluded.evicted_turns",
                (
                    session.id,
                    title_of(session.messages),
                    now,
                    now,
                    window.start,
                    window.evicted_turns,
                ),
            )
            conn.execute("DELETE FROM messages WHERE conversation_id = ?", (session.id,))
            conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def resume(self, agent: Agent, conversation_id: str) -> Session:
        """A session of `agent` that goes on from the saved conversation."""
        found = self.memory.query(
            "SELECT window_start, evicted_turns FROM conversations WHERE id = ?",
            (conversation_id,),
        )
        if not found:
            raise EdgeAgentError(
                f"no conversation {conversation_id!r} in {self.memory.path}",
                hint="list them with Conversations.list()",
            )
        session = agent.session(conversation_id)
        session.window.start, session.window.evicted_turns = found[0]
        rows = self.memory.query(
            "SELECT role, content, calls, name, recalled, record FROM messages "
            "WHERE conversation_id = ? ORDER BY seq",
            (conversation_id,),
        )
        for role, content, calls, name, recalled, record in rows:
            parsed = [ToolCall(c["name"], c["arguments"]) for c in json.loads(calls)]
            memories = tuple(json.loads(recalled))
            session.messages.append(Message(role, content, parsed, name, memories))
            if role == "tool":
                fields = json.loads(record) if record else {}
                arguments: dict[str, Any] = fields.get("arguments", {})
                session.records.append(ToolCallRecord(name, arguments, content, **_known(fields)))
        return session

    def delete(self, conversation_id: str) -> bool:
        """Remove a conversation and the turns it evicted into memory (saved notes stay)."""
        with self.memory.transaction() as conn:
            cur = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            conn.execute(
                "DELETE FROM entries WHERE kind = 'turn' "
                "AND json_extract(metadata, '$.session') = ?",
                (conversation_id,),
            )
        return cur.rowcount > 0


def title_of(messages: list[Message]) -> str:
    """The first user message, on one line and cut to TITLE_CHARS."""
    first = next((m.content for m in messages if m.role == "user"), "")
    line = " ".join(first.split()) or "(empty)"
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def _record_fields(record: ToolCallRecord) -> dict[str, Any]:
    return {
        "arguments": record.arguments,
        "ok": record.ok,
        "error": record.error,
        "duration_s": record.duration_s,
        "status": record.status,
    }


def _known(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": fields.get("ok", True),
        "error": fields.get("error"),
        "duration_s": fields.get("duration_s", 0.0),
        "status": fields.get("status"),
    }
