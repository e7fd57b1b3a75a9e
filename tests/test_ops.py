"""Confidence, abstention, traces and `edgeagent stats`, and escalation to a fallback server (a
second real `edgeagent serve` process), on the embedded model."""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest

from edgeagent import Agent
from edgeagent.demo_tools import DEMO_TOOLS
from edgeagent.fallback import Fallback
from edgeagent.session import ABSTAIN_ANSWER
from tests.test_cli import cli

pytestmark = pytest.mark.model
UNSURE = "How big is my downloads folder?"  # no tool fits: it calls device_status, unsure


@pytest.fixture(scope="module")
def agent_args():
    return {"tools": list(DEMO_TOOLS), "allow": "all", "max_steps": 2}


def test_every_reply_has_a_confidence_and_a_low_one_abstains(agent_args):
    sure = Agent(**agent_args).run("Start a 12 minute timer for the pasta")
    assert sure.confidence is not None and sure.confidence > 0.9 and sure.tool_calls
    acted = Agent(**agent_args).run(UNSURE)
    assert acted.tool_calls and acted.confidence < sure.confidence
    careful = Agent(**agent_args, min_confidence=(acted.confidence + sure.confidence) / 2)
    result = careful.run(UNSURE)
    assert result.abstained and result.tool_calls == [] and result.answer == ABSTAIN_ANSWER
    assert careful.run("Start a 12 minute timer for the pasta").tool_calls  # the sure one runs
    out = json.loads(cli("run", UNSURE, "--min-confidence", "0.99", "--yes", "--json").stdout)
    assert out["abstained"] is True and isinstance(out["confidence"], float)


def test_a_trace_records_each_turn_and_stats_reads_it(tmp_path):
    trace = tmp_path / "trace.db"
    for prompt in ("Start a 12 minute timer for the pasta", "Tell me a joke about penguins."):
        cli("run", prompt, "--trace", str(trace), "--yes", "--json")
    with sqlite3.connect(trace) as conn:
        rows = conn.execute("SELECT source, calls, confidence, prompt FROM turns").fetchall()
    assert [r[0] for r in rows] == ["agent", "agent"] and all(r[2] is not None for r in rows)
    assert json.loads(rows[0][1])[0]["name"] == "set_timer"
    assert rows[0][3] is None  # no message text without --trace-content
    stats = json.loads(cli("stats", str(trace), "--json", "--plot", str(tmp_path / "s.png")).stdout)
    assert stats["turns"] == 2 and stats["calls"] == 1 and stats["call_success_rate"] == 1.0
    assert stats["per_tool"]["set_timer"]["calls"] == 1
    assert 0 < stats["ttft_s"]["p50"] <= stats["ttft_s"]["p99"]
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    cli("run", "What time is it?", "--trace", str(trace), "--trace-content", "--json")
    with sqlite3.connect(trace) as conn:
        assert conn.execute("SELECT prompt FROM turns ORDER BY id DESC").fetchone()[0] == (
            "What time is it?"
        )
    later = json.loads(cli("stats", str(trace), "--since", "2099-01-01", "--json").stdout)
    assert later["turns"] == 0


@pytest.fixture(scope="module")
def fallback_server(tmp_path_factory):
    from tests.test_serve import start_server

    proc, url = start_server(tmp_path_factory.mktemp("fallback"))
    yield url + "/v1"
    proc.terminate()
    proc.wait(timeout=60)


def test_an_unsure_turn_is_escalated_and_its_calls_run_checked(agent_args, fallback_server):
    agent = Agent(**agent_args, min_confidence=0.9999, fallback=Fallback(fallback_server))
    result = agent.run("Start a 12 minute timer for the pasta")
    assert result.escalated and result.escalation_error is None
    assert [c.name for c in result.tool_calls] == ["set_timer"] and result.tool_calls[0].ok
    assert result.tool_calls[0].arguments["minutes"] == 12


def test_a_fallback_that_is_down_or_slow_leaves_the_local_reply(agent_args, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = Agent(**agent_args, min_confidence=0.9999,
                 fallback=Fallback(f"http://127.0.0.1:{closed}/v1", timeout_s=5))  # fmt: skip
    result = down.run(UNSURE)
    assert not result.escalated and "unreachable" in result.escalation_error
    assert result.abstained  # what the local agent does with an unsure call
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        slow = Agent(**agent_args, min_confidence=0.9999, trace=tmp_path / "t.db",
                     fallback=Fallback(f"http://127.0.0.1:{port}/v1", timeout_s=1))  # fmt: skip
        result = slow.run(UNSURE)
    assert not result.escalated and "timed out" in result.escalation_error
    stats = json.loads(cli("stats", str(tmp_path / "t.db"), "--json").stdout)
    assert stats["escalation_failures"] == 1 and stats["abstention_rate"] == 1.0


def test_the_fallback_s_calls_are_validated_like_the_model_s(agent_args, monkeypatch):
    from edgeagent.wireformat import ToolCall

    def invalid(self, *args, **kw):
        return "", [ToolCall("set_timer", {"minutes": "soon"})]

    monkeypatch.setattr(Fallback, "ask", invalid)
    agent = Agent(**agent_args, min_confidence=0.9999, fallback=Fallback("http://unused/v1"))
    result = agent.run("Start a 12 minute timer for the pasta")
    assert not result.escalated and "not valid" in result.escalation_error
