"""The local memory index: one SQLite file, keyword search (FTS5, BM25) and vector search over
embeddings, fused by reciprocal rank.

SQLite runs in WAL mode with a busy timeout, so two processes can share one file; every write is
one transaction, so a killed process loses nothing it committed. A file that is not a memory
database is refused with its name and never replaced.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgeagent.errors import EdgeAgentError
from edgeagent.memory.embedders import Embedder
from edgeagent.memory.vectors import VectorIndex

SCHEMA_VERSION = 1
SearchMode = Literal["hybrid", "keyword", "vector"]
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al. 2009)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_kind ON entries(kind);
CREATE TABLE IF NOT EXISTS vectors (
    entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS entries_fts USING fts5(
    text, content='entries', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS entries_ai AFTER INSERT ON entries BEGIN
    INSERT INTO entries_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS entries_ad AFTER DELETE ON entries BEGIN
    INSERT INTO entries_fts(entries_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""
# The conversation tables (edgeagent.conversations) are that module's own, with their versions.


class MemoryFileError(EdgeAgentError):
    """The memory file cannot be used (corrupt, not SQLite, or another embedder's)."""


@dataclass(frozen=True)
class Hit:
    id: int
    kind: str
    text: str
    metadata: dict[str, Any]
    score: float
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "metadata": self.metadata,
            "score": round(self.score, 6),
            "created_at": self.created_at,
        }


class MemoryIndex:
    """Add, search, delete and count text entries with metadata and a kind."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        embedder: Embedder | None = None,
        *,
        ann_threshold: int = 20_000,
    ) -> None:
        self.path = str(path)  # ":memory:" for an in-process index
        self.embedder = embedder
        self._lock = threading.RLock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._open()
        self._vectors = VectorIndex(
            dim=embedder.dim if embedder else 0, ann_threshold=ann_threshold
        )
        self._data_version = -1

    # ------------------------------------------------------------------ opening

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            # Look before writing anything: a foreign or corrupt file must stay as it is.
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "entries" not in tables:
                conn.close()
                raise MemoryFileError(
                    f"{self.path} is an SQLite database but not an edgeagent memory file",
                    hint="pass another path; this file was left untouched",
                )
            _retry_busy(lambda: self._setup(conn))
        except sqlite3.DatabaseError as exc:
            raise MemoryFileError(
                f"cannot open memory file {self.path}: {exc}",
                hint="the file is corrupt or not SQLite; it was left untouched. "
                "Move it away to start a new memory",
            ) from None
        return conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable against process crashes
        conn.execute("PRAGMA foreign_keys=ON")
        # One transaction, so another process opening the new file sees all tables or none
        # (never "meta" without "entries", which reads as a foreign database).
        conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
        self._check_meta(conn)

    def _check_meta(self, conn: sqlite3.Connection) -> None:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        want = {"schema_version": str(SCHEMA_VERSION)}
        if self.embedder is not None:
            want["embedder"] = self.embedder.name
            want["dim"] = str(self.embedder.dim)
        for key, value in want.items():
            if key in meta and meta[key] != value:
                raise MemoryFileError(
                    f"{self.path} was written with {key}={meta[key]}, not {value}",
                    hint="open it with the same embedder, or use another file",
                )
        with conn:
            conn.executemany(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", list(want.items())
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> MemoryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, inside one transaction that this process holds alone (the
        conversation list writes through this)."""
        with self._lock, self._conn:
            yield self._conn

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    # ------------------------------------------------------------------ writing

    def add(self, text: str, kind: str = "note", metadata: dict[str, Any] | None = None) -> int:
        return self.add_many([(text, kind, metadata or {})])[0]

    def add_many(self, items: Iterable[tuple[str, str, dict[str, Any]]]) -> list[int]:
        """Add entries in one transaction (embedding first, so a failure writes nothing)."""
        rows = [(text, kind, metadata or {}) for text, kind, metadata in items]
        if not rows:
            return []
        vectors = self.embedder.embed([r[0] for r in rows]) if self.embedder else None
        now = time.time()
        ids: list[int] = []
        with self._lock, self._conn:
            for i, (text, kind, metadata) in enumerate(rows):
                cur = self._conn.execute(
                    "INSERT INTO entries(kind, text, metadata, created_at) VALUES (?, ?, ?, ?)",
                    (kind, text, json.dumps(metadata, ensure_ascii=False), now),
                )
                entry_id = int(cur.lastrowid or 0)
                ids.append(entry_id)
                if vectors is not None:
                    self._conn.execute(
                        "INSERT INTO vectors(entry_id, embedding) VALUES (?, ?)",
                        (entry_id, vectors[i].astype(np.float32).tobytes()),
                    )
        return ids

    def delete(self, entry_id: int) -> bool:
        with self._lock, self._conn:
            cur = self._conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
        return cur.rowcount > 0

    # ------------------------------------------------------------------ reading

    def get(self, entry_id: int) -> Hit | None:
        row = self._conn.execute(
            "SELECT id, kind, text, metadata, created_at FROM entries WHERE id = ?", (entry_id,)
        ).fetchone()
        return _hit(row, 0.0) if row else None

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        kind: str | Iterable[str] | None = None,
        filters: dict[str, Any] | None = None,
        exclude_ids: Iterable[int] = (),
        mode: SearchMode = "hybrid",
        vector_weight: float = 0.5,
    ) -> list[Hit]:
        """The k best entries for `query`. Filters match metadata keys exactly. In hybrid mode
        the two rankings are fused by weighted reciprocal rank: 0.5 weighs them equally (plain
        RRF); measure before moving it (benchmarks/bench_memory.py)."""
        if mode != "keyword" and self.embedder is None:
            mode = "keyword"
        allowed = self._allowed_ids(kind, filters, exclude_ids)
        depth = max(k * 4, 20)
        ranked: dict[int, float] = {}
        if mode in ("keyword", "hybrid"):
            weight = 2 * (1 - vector_weight) if mode == "hybrid" else 1.0
            for rank, entry_id in enumerate(self._keyword(query, depth, allowed)):
                ranked[entry_id] = ranked.get(entry_id, 0.0) + weight / (RRF_K + rank + 1)
        if mode in ("vector", "hybrid"):
            weight = 2 * vector_weight if mode == "hybrid" else 1.0
            for rank, entry_id in enumerate(self._vector(query, depth, allowed)):
                ranked[entry_id] = ranked.get(entry_id, 0.0) + weight / (RRF_K + rank + 1)
        best = sorted(ranked.items(), key=lambda kv: -kv[1])[:k]
        hits = []
        for entry_id, score in best:
            row = self._conn.execute(
                "SELECT id, kind, text, metadata, created_at FROM entries WHERE id = ?",
                (entry_id,),
            ).fetchone()
            if row:
                hits.append(_hit(row, score))
        return hits

    def _allowed_ids(
        self,
        kind: str | Iterable[str] | None,
        filters: dict[str, Any] | None,
        exclude_ids: Iterable[int],
    ) -> set[int] | None:
        excluded = set(exclude_ids)
        if kind is None and not filters and not excluded:
            return None
        where, args = [], []
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            args += kinds
        for key, value in (filters or {}).items():
            where.append("json_extract(metadata, ?) = ?")
            args += [f"$.{key}", value]
        sql = "SELECT id FROM entries" + (" WHERE " + " AND ".join(where) if where else "")
        return {r[0] for r in self._conn.execute(sql, args)} - excluded

    def _keyword(self, query: str, depth: int, allowed: set[int] | None) -> list[int]:
        terms = [t for t in _fts_terms(query)]
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        limit = depth if allowed is None else depth * 20
        rows = self._conn.execute(
            "SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? ORDER BY bm25(entries_fts) "
            "LIMIT ?",
            (match, limit),
        ).fetchall()
        ids = [r[0] for r in rows if allowed is None or r[0] in allowed]
        return ids[:depth]

    def _vector(self, query: str, depth: int, allowed: set[int] | None) -> list[int]:
        assert self.embedder is not None
        self._sync_vectors()
        if not len(self._vectors):
            return []
        q = self.embedder.embed([query])[0]
        return self._vectors.search(q, depth, allowed)

    def _sync_vectors(self) -> None:
        """Bring the in-memory vector index up to date with the file (other processes too)."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        count = self._conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
        if version == self._data_version and count == len(self._vectors):
            return
        with self._lock:
            known = self._vectors.ids()
            rows = self._conn.execute("SELECT entry_id FROM vectors").fetchall()
            present = {r[0] for r in rows}
            gone = known - present
            if gone:
                self._vectors.remove(gone)
            new = sorted(present - known)
            for start in range(0, len(new), 5000):
                chunk = new[start : start + 5000]
                got = self._conn.execute(
                    f"SELECT entry_id, embedding FROM vectors WHERE entry_id IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                ids = np.array([g[0] for g in got], dtype=np.int64)
                mat = np.stack([np.frombuffer(g[1], dtype=np.float32) for g in got])
                self._vectors.add(ids, mat)
            self._data_version = version

    def stats(self) -> dict[str, Any]:
        count = self._conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        kinds = dict(self._conn.execute("SELECT kind, count(*) FROM entries GROUP BY kind"))
        vectors = self._conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
        size = Path(self.path).stat().st_size if self.path != ":memory:" else 0
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        return {
            "path": self.path,
            "entries": count,
            "by_kind": kinds,
            "vectors": vectors,
            "embedder": meta.get("embedder"),
            "dim": int(meta.get("dim", 0)),
            "vector_index": self._vectors.kind,
            "size_bytes": size,
        }

    def export(self) -> Iterator[dict[str, Any]]:
        """Every entry as a dict, oldest first (for JSON lines)."""
        rows = self._conn.execute(
            "SELECT id, kind, text, metadata, created_at FROM entries ORDER BY id"
        )
        for row in rows:
            yield _hit(row, 0.0).to_dict() | {"score": None}


def _retry_busy(step: Callable[[], None], seconds: float = 30.0) -> None:
    """Run a setup step, retrying while another process holds the file. Switching to WAL needs a
    moment of exclusive access, and SQLite's busy timeout does not cover it: two processes that
    open a new file at once otherwise fail with "database is locked"."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _hit(row: tuple[Any, ...], score: float) -> Hit:
    return Hit(row[0], row[1], row[2], json.loads(row[3]), score, row[4])


def _fts_terms(query: str) -> list[str]:
    """Words of a query as FTS5 string literals (quotes doubled), so no query is a syntax error."""
    words = "".join(c if c.isalnum() else " " for c in query.lower()).split()
    return [w.replace('"', '""') for w in words if len(w) > 1 or w.isdigit()]
