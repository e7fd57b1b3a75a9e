"""The memory index: SQLite, FTS5 + vectors fused, faults, two processes, the CLI."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeagent.memory import MemoryFileError, MemoryIndex
from edgeagent.memory.embedders import normalize
from edgeagent.memory.vectors import VectorIndex

ROOT = Path(__file__).resolve().parents[1]


class WordHashEmbedder:
    """A deterministic stand-in embedder for unit tests: hashed bag of words."""

    name = "test-wordhash"
    dim = 64

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        return normalize(out + 1e-6)


FACTS = [
    ("My favourite colour is green.", "note", {"topic": "me"}),
    ("The wifi password is tulip42.", "note", {"topic": "home"}),
    ("I parked the car on level 3.", "note", {"topic": "car"}),
    ("Dentist appointment on Friday at 9.", "event", {"topic": "health"}),
]


def test_add_search_filter_delete_stats_export(tmp_path):
    with MemoryIndex(tmp_path / "m.db", WordHashEmbedder()) as mem:
        ids = mem.add_many(FACTS)
        assert ids == [1, 2, 3, 4]
        for mode in ("keyword", "vector", "hybrid"):
            assert mem.search("wifi password", k=1, mode=mode)[0].id == 2, mode
        assert [h.id for h in mem.search("the", k=5, kind="event")] == [4]
        assert [h.id for h in mem.search("car level", filters={"topic": "car"})] == [3]
        assert mem.search("car level", filters={"topic": "home"}, mode="keyword") == []
        assert mem.delete(3) and not mem.delete(3)
        assert all(h.id != 3 for h in mem.search("parked car level 3", k=4))
        stats = mem.stats()
        assert stats["entries"] == 3 and stats["vectors"] == 3
        assert stats["by_kind"] == {"note": 2, "event": 1}
        assert stats["embedder"] == "test-wordhash" and stats["dim"] == 64
        rows = list(mem.export())
        assert [r["id"] for r in rows] == [1, 2, 4] and rows[0]["metadata"] == {"topic": "me"}
    conn = sqlite3.connect(tmp_path / "m.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_queries_with_fts_syntax_are_not_errors():
    mem = MemoryIndex()
    mem.add('he said "hello" AND (bye) NEAR* -x')
    mem.add("nothing to see")
    # operators are read as the words they are: each finds the memory holding it, and only it
    for q in ["AND", "(bye", "NEAR*", '"hello" AND (bye']:
        assert [h.id for h in mem.search(q)] == [1], q
    for q in ['"', "-x", "💥", ""]:  # no word (x is too short to index): nothing, no error
        assert mem.search(q) == [], q


def test_a_file_written_with_another_embedder_is_refused(tmp_path):
    MemoryIndex(tmp_path / "m.db", WordHashEmbedder()).close()

    class Other(WordHashEmbedder):
        name = "other"

    with pytest.raises(MemoryFileError, match="embedder=test-wordhash"):
        MemoryIndex(tmp_path / "m.db", Other())


@pytest.mark.parametrize(
    "content", [b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 5000]
)
def test_corrupt_file_is_named_and_left_untouched(tmp_path, content):
    path = tmp_path / "m.db"
    path.write_bytes(content)
    with pytest.raises(MemoryFileError, match=str(path)):
        MemoryIndex(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(MemoryFileError, match="not an edgeagent memory file"):
        MemoryIndex(path)
    assert path.read_bytes() == before


WRITER = """
import sys
from edgeagent.memory import MemoryIndex
mem = MemoryIndex(sys.argv[1])
for i in range(int(sys.argv[2])):
    entry = mem.add(f"{sys.argv[3]} entry {i}", kind="burst")
    print(entry, flush=True)
"""


def test_sigkill_during_a_burst_loses_no_committed_entry(tmp_path):
    path = tmp_path / "m.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "1000000", "w"], stdout=subprocess.PIPE, text=True
    )
    committed = []
    assert proc.stdout is not None
    while len(committed) < 300:
        committed.append(int(proc.stdout.readline()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with MemoryIndex(path) as mem:
        assert mem._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in mem._conn.execute("SELECT id FROM entries")}
    assert set(committed) <= stored  # every entry reported as committed survived


def test_two_processes_share_one_file(tmp_path):
    path = tmp_path / "m.db"
    MemoryIndex(path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "200", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    with MemoryIndex(path) as mem:
        assert mem.stats()["entries"] == 400
        assert mem.search("beta entry 199", k=1, mode="keyword")[0].text == "beta entry 199"


def test_processes_that_create_one_new_file_at_once_all_open_it(tmp_path):
    # The schema is created in one transaction: a process that looks while another creates it
    # must never see half the tables (that reads as a foreign database and is refused).
    opener = (
        "import sys; from edgeagent.memory import MemoryIndex; MemoryIndex(sys.argv[1]).close()"
    )
    for round_ in range(3):
        path = tmp_path / f"new{round_}.db"
        procs = [
            subprocess.Popen([sys.executable, "-c", opener, str(path)], cwd=ROOT,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(6)
        ]  # fmt: skip
        for proc in procs:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err


def test_vectors_added_by_another_connection_are_seen(tmp_path):
    path = tmp_path / "m.db"
    reader = MemoryIndex(path, WordHashEmbedder())
    reader.add("apples and pears")
    assert reader.search("apples", k=1, mode="vector")[0].id == 1
    writer = MemoryIndex(path, WordHashEmbedder())
    writer.add("bananas only")
    assert reader.search("bananas only", k=1, mode="vector")[0].text == "bananas only"
    writer.delete(2)
    assert all(h.id != 2 for h in reader.search("bananas only", k=2, mode="vector"))


def test_ann_index_recall_against_exact():
    rng = np.random.default_rng(0)
    data = normalize(rng.normal(size=(5000, 32)).astype(np.float32))
    index = VectorIndex(dim=32, ann_threshold=1000)
    index.add(np.arange(5000, dtype=np.int64), data)
    assert index.kind == "hnsw"
    recalls = []
    for q in normalize(rng.normal(size=(50, 32)).astype(np.float32)):
        exact = set(index.exact(q, 10))
        recalls.append(len(exact & set(index.search(q, 10))) / 10)
    assert np.mean(recalls) >= 0.9
    allowed = set(range(0, 5000, 7))
    assert set(index.search(data[14], 5, allowed)) <= allowed


def test_memory_cli(tmp_path):
    db = str(tmp_path / "cli.db")

    def cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "edgeagent", "memory", *args, "--db", db],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert json.loads(
        cli("add", "The wifi password is tulip42", "--meta", "room=hall", "--json")
    ) == {"id": 1}
    cli("add", "Parked on level 3")
    hits = json.loads(cli("search", "wifi", "--json"))
    assert hits[0]["text"] == "The wifi password is tulip42" and hits[0]["metadata"] == {
        "room": "hall"
    }
    assert json.loads(cli("stats", "--json"))["entries"] == 2
    lines = cli("export").splitlines()
    assert [json.loads(x)["id"] for x in lines] == [1, 2]


@pytest.mark.model
def test_llama_embedder_puts_similar_texts_closer():
    import hnswlib  # noqa: F401  (must coexist with llama.cpp in one process)

    from edgeagent.memory import LlamaEmbedder

    emb = LlamaEmbedder()
    a, b, c = emb.embed(
        ["The cat sat on the mat.", "A cat is sitting on a mat.", "Quarterly tax filing deadlines."]
    )
    assert abs(np.linalg.norm(a) - 1) < 1e-4
    assert a @ b > a @ c


AGENT = """
import sys
from edgeagent import Agent
from tests.test_agent_loop import ScriptedBackend, set_timer
backend = ScriptedBackend(["ok, noted."] * 60, n_ctx=1600)
agent = Agent([set_timer], backend=backend, memory=sys.argv[1], max_tokens=32)
session = agent.session(session_id=sys.argv[2])
for i in range(40):
    session.send(f"{sys.argv[2]} says fact number {i}")
print(session.window.evicted_turns)
"""


def test_two_agents_in_two_processes_share_one_memory_file(tmp_path):
    path = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AGENT, str(path), name],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for name in ("alice", "bob")
    ]
    evicted = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        evicted.append(int(out))
    with MemoryIndex(path) as mem:
        turns = mem.stats()["by_kind"]["turn"]
        assert turns == sum(evicted) and min(evicted) > 10
        for name in ("alice", "bob"):
            hits = mem.search(f"{name} fact number 3", k=1, filters={"session": name})
            assert hits and "fact number 3" in hits[0].text
