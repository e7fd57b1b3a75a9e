"""Traces: what an agent did, one SQLite record per turn, for `edgeagent stats`.

Nothing is recorded unless asked (`Agent(trace=PATH)`, `--trace` on run, chat and serve), and
the text of prompts and answers only with `trace_content` (`--trace-content`). A record:

    time, source (agent | serve | the deployment slot that ran it, "slot b"), model and
    adapter SHA-256 (first 16 hex digits), the tools offered, the calls made (name; status:
    ran / error / declined, or "proposed" for a server's calls, which its client runs;
    valid: its arguments passed the tool's validation), confidence, abstained, escalated
    (and why not, when the fallback failed), TTFT, decode tokens/s, total seconds, tokens in
    and out

Each record is one transaction; a killed process loses at most the turn it was in.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.results import RunResult, ToolCallRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    source TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    adapter TEXT NOT NULL DEFAULT '',
    tools TEXT NOT NULL DEFAULT '[]',
    calls TEXT NOT NULL DEFAULT '[]',
    confidence REAL,
    abstained INTEGER NOT NULL DEFAULT 0,
    escalated INTEGER NOT NULL DEFAULT 0,
    escalation_error TEXT,
    ttft_s REAL,
    decode_tokens_per_s REAL,
    total_s REAL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    prompt TEXT,
    answer TEXT
);
CREATE INDEX IF NOT EXISTS turns_time ON turns(time);
"""


@lru_cache(maxsize=16)
def short_digest(path: str) -> str:
    from edgeagent.models import file_fingerprint

    return (file_fingerprint(path) or "")[:16] if path else ""


@dataclass
class Turn:
    source: str
    model: str = ""
    adapter: str = ""
    tools: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    abstained: bool = False
    escalated: bool = False
    escalation_error: str | None = None
    ttft_s: float | None = None
    decode_tokens_per_s: float | None = None
    total_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    prompt: str | None = None
    answer: str | None = None


def call_entry(record: ToolCallRecord) -> dict[str, Any]:
    valid = not (record.error or "").startswith(f"invalid arguments for {record.name}")
    return {"name": record.name, "status": record.status, "valid": valid,
            "duration_s": round(record.duration_s, 4)}  # fmt: skip


class Tracer:
    def __init__(self, path: str | Path, *, content: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.content = content
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            with self._conn:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise EdgeAgentError(
                f"cannot trace into {self.path}: {exc}",
                hint="give --trace a new file or an earlier trace",
            ) from None

    def record(self, turn: Turn) -> None:
        row = {
            **turn.__dict__,
            "tools": json.dumps(turn.tools),
            "calls": json.dumps(turn.calls),
            "prompt": turn.prompt if self.content else None,
            "answer": turn.answer if self.content else None,
        }
        keys = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._lock, self._conn:
            self._conn.execute(
                f"INSERT INTO turns(time, {keys}) VALUES (?, {marks})", (time.time(), *row.values())
            )

    def record_run(
        self, result: RunResult, *, source: str, model: str, adapter: str | Path | None,
        tools: list[str], prompt: str,
    ) -> None:  # fmt: skip
        self.record(
            Turn(
                source=source, model=short_digest(model), adapter=short_digest(str(adapter or "")),
                tools=tools, calls=[call_entry(c) for c in result.tool_calls],
                confidence=result.confidence, abstained=result.abstained,
                escalated=result.escalated, escalation_error=result.escalation_error,
                ttft_s=round(result.timings.ttft_s, 4),
                decode_tokens_per_s=round(result.decode_tokens_per_s, 2),
                total_s=round(result.timings.total_s, 4),
                tokens_in=result.usage.prompt_tokens, tokens_out=result.usage.completion_tokens,
                prompt=prompt, answer=result.answer,
            )
        )  # fmt: skip

    def close(self) -> None:
        self._conn.close()


def read_turns(path: str | Path, since: float = 0.0) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM turns WHERE time >= ? ORDER BY time", (since,))
        turns = [dict(r) for r in rows]
    finally:
        conn.close()
    for t in turns:
        t["tools"], t["calls"] = json.loads(t["tools"]), json.loads(t["calls"])
    return turns


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 4)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99)}


def summarize(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates and latency percentiles, overall, per tool and per adapter."""

    def rates(group: list[dict[str, Any]]) -> dict[str, Any]:
        calls = [c for t in group for c in t["calls"]]
        run = [c for c in calls if c["status"] != "proposed"]  # a server's client runs its own
        confident = [t["confidence"] for t in group if t["confidence"] is not None]
        return {
            "turns": len(group),
            "calls": len(calls),
            "call_success_rate": _share(sum(c["status"] == "ran" for c in run), len(run)),
            "call_validity_rate": _share(sum(c["valid"] for c in calls), len(calls)),
            "declined": sum(c["status"] == "declined" for c in calls),
            "abstention_rate": _share(sum(t["abstained"] for t in group), len(group)),
            "escalation_rate": _share(sum(t["escalated"] for t in group), len(group)),
            "escalation_failures": sum(bool(t["escalation_error"]) for t in group),
            "mean_confidence": round(sum(confident) / len(confident), 4) if confident else None,
            "ttft_s": percentiles([t["ttft_s"] for t in group if t["ttft_s"] is not None]),
            "total_s": percentiles([t["total_s"] for t in group if t["total_s"] is not None]),
            "decode_tokens_per_s_p50": percentiles(
                [t["decode_tokens_per_s"] for t in group if t["decode_tokens_per_s"]]
            )["p50"],
        }

    tools: dict[str, list[dict[str, Any]]] = {}
    for t in turns:
        for c in t["calls"]:
            tools.setdefault(c["name"], []).append(c)
    per_tool = {
        name: {
            "calls": len(calls),
            "success_rate": _share(
                sum(c["status"] == "ran" for c in calls),
                sum(c["status"] != "proposed" for c in calls),
            ),
            "validity_rate": _share(sum(c["valid"] for c in calls), len(calls)),
            "duration_s": percentiles([c["duration_s"] for c in calls]),
        }
        for name, calls in sorted(tools.items())
    }
    adapters: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, list[dict[str, Any]]] = {}
    for t in turns:
        adapters.setdefault(t["adapter"] or "(none)", []).append(t)
        sources.setdefault(t["source"], []).append(t)
    return {
        **rates(turns),
        "per_tool": per_tool,
        "per_adapter": {name: rates(group) for name, group in sorted(adapters.items())},
        # "agent", "serve", or a deployment's slot ("slot a"): a canary trial's two sides
        "per_source": {name: rates(group) for name, group in sorted(sources.items())},
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def plot(turns: list[dict[str, Any]], path: str | Path) -> None:
    """The TTFT and whole-turn latency distributions, and call success / abstention /
    escalation rates over time (in ten windows of the trace)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    ttft = [t["ttft_s"] for t in turns if t["ttft_s"] is not None]
    total = [t["total_s"] for t in turns if t["total_s"] is not None]
    left.hist([ttft, total], bins=20, label=["time to first token", "whole turn"],
              color=["#4c72b0", "#dd8452"])  # fmt: skip
    left.set_xlabel("seconds")
    left.set_ylabel("turns")
    left.set_title(f"Latency, {len(turns)} turns")
    left.legend()
    windows = max(1, min(10, len(turns)))
    size = -(-len(turns) // windows)
    chunks = [turns[i : i + size] for i in range(0, len(turns), size)]
    xs = list(range(1, len(chunks) + 1))
    for key, label in (("call_success_rate", "call success"), ("abstention_rate", "abstained"),
                       ("escalation_rate", "escalated")):  # fmt: skip
        ys = [summarize(c)[key] for c in chunks]
        right.plot(xs, [y if y is not None else float("nan") for y in ys], marker="o", label=label)
    right.set_ylim(-0.05, 1.05)
    right.set_xlabel("window of the trace (oldest to newest)")
    right.set_title("Rates over time")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
