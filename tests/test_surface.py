"""Surface a user reaches that no other test touched: run's options end to end, eval's case
files, model, bundle and checks beyond calls, the demo tools without a model, the llama.cpp
abort callback, and `edgeagent chat` as `make run` starts it, in a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeagent.cli import main
from tests.test_cli import cli

TOOLS_FILE = '''
from pathlib import Path
from edgeagent import tool

@tool(effects="write")
def water_plants(minutes: int) -> str:
    """Water the garden plants.

    Args:
        minutes: how long to water, in minutes
    """
    Path(__file__).with_name("watered.txt").write_text(str(minutes))
    return f"watering for {minutes} minutes"
'''


@pytest.mark.model
def test_run_with_a_tools_file_an_allowed_tool_and_a_memory_file(tmp_path):
    (tmp_path / "garden.py").write_text(TOOLS_FILE)
    memory = tmp_path / "memory.db"
    out = json.loads(cli(
        "run", "--tools", str(tmp_path / "garden.py"), "--allow", "water_plants",
        "--memory", str(memory), "--tool-choice", "required", "--json",
        "Water the plants for 5 minutes",
    ).stdout)  # fmt: skip
    call = out["tool_calls"][0]
    assert call["name"] == "water_plants" and call["ok"], out  # allowed: ran without a terminal
    assert (tmp_path / "watered.txt").read_text() == str(call["arguments"]["minutes"])
    assert memory.exists()  # the session's memory is the file given, and edgeagent reads it
    assert json.loads(cli("memory", "stats", "--db", str(memory), "--json").stdout)["path"]


def test_run_passes_its_options_to_the_agent_and_no_grammar_reaches_the_backend(monkeypatch):
    """The wiring from options to the loop, with a scripted model: --no-grammar means the
    backend is given no grammar; --max-steps, --tool-choice, --no-adapter arrive as settings."""
    from edgeagent.agent import Agent
    from tests.test_agent_loop import ScriptedBackend

    backend = ScriptedBackend(["Hello there."])
    made: list[Agent] = []
    monkeypatch.setattr(Agent, "backend", property(lambda self: made.append(self) or backend))
    argv = ["run", "--no-grammar", "--no-adapter", "--max-steps", "3", "--tool-choice", "none",
            "--json", "hi"]  # fmt: skip
    result = CliRunner().invoke(main, argv, prog_name="edgeagent")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answer"] == "Hello there."
    agent = made[0]
    assert (agent.constrained, agent.max_steps, agent.tool_choice) == (False, 3, "none")
    assert agent.adapter is None and backend.grammars == [None]


QUESTIONS = [
    {"id": "timer", "question": [[{"role": "user", "content": "Start a 12 minute timer"}]],
     "function": [{"name": "set_timer", "description": "Start a countdown timer.",
                   "parameters": {"type": "dict", "properties": {"minutes": {"type": "integer",
                   "description": "how long, in minutes"}}, "required": ["minutes"]}}]},
    {"id": "joke", "question": [[{"role": "user", "content": "Tell me a joke about penguins."}]],
     "function": [{"name": "get_stock_price", "description": "Price of a stock.",
                   "parameters": {"type": "dict", "properties": {"ticker": {"type": "string"}},
                   "required": ["ticker"]}}]},
]  # fmt: skip
ANSWERS = [{"id": "timer", "ground_truth": [{"set_timer": {"minutes": [12]}}]}]


@pytest.fixture
def case_files(tmp_path):
    questions, answers = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    answers.write_text("".join(json.dumps(a) + "\n" for a in ANSWERS))
    return questions, answers


def _scored(report, predictions):
    """The report's counts are what the checker says of each prediction."""
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["timer", "joke"]
    assert report["overall"]["correct"] == sum(r["ok"] for r in rows)
    joke = rows[1]
    assert joke["ok"] == (joke["calls"] == [])  # no answer line: irrelevance
    return rows


@pytest.mark.model
def test_eval_on_case_files_with_the_model_option(case_files, tmp_path):
    from edgeagent.models import default_model_path

    questions, answers = case_files
    preds = tmp_path / "p.jsonl"
    report = json.loads(cli(
        "eval", "--questions", str(questions), "--answers", str(answers), "--model",
        str(default_model_path()), "--no-adapter", "--json", "--predictions-out", str(preds),
    ).stdout)  # fmt: skip
    assert report["model"] == str(default_model_path()) and not report["adapter"]
    assert [c["category"] for c in report["categories"]] == ["q"]
    _scored(report, preds)


@pytest.mark.model
def test_eval_of_a_bundle_uses_its_model_and_adapter(case_files, tmp_path):
    bundle = tmp_path / "bundle"
    cli("build", "--target", "rpi5", "--out", str(bundle))
    questions, answers = case_files
    preds = tmp_path / "p.jsonl"
    report = json.loads(cli(
        "eval", "--bundle", str(bundle), "--questions", str(questions), "--answers",
        str(answers), "--json", "--predictions-out", str(preds),
    ).stdout)  # fmt: skip
    assert report["model"].startswith(str(bundle)) and report["adapter"]
    rows = _scored(report, preds)
    assert rows[0]["calls"][0]["name"] == "set_timer"  # the bundle's adapter calls


@pytest.mark.model
def test_eval_coherence_and_regression_from_the_cli():
    report = json.loads(cli("eval", "--coherence", "--regression", "--json").stdout)
    coherence = report["coherence"]
    results = coherence["results"]
    assert coherence["cases"] == len(results) >= 10
    uses = sum(r["ok"] for r in results) / len(results)
    assert coherence["answer_uses_result"] == round(uses, 3)
    assert uses > 0.5  # the shipped configuration uses results more often than not
    regression = report["regression"]
    p, a, limits = regression["perplexity"], regression["no_tool_answers"], regression["limits"]
    assert p["ratio"] == round(p["adapter"] / p["bare"], 3)
    assert regression["regressed"] == (
        p["ratio"] > limits["perplexity_ratio"] or a["bare"] - a["adapter"] > limits["answers_drop"]
    )
    assert len(regression["answers"]["bare"]) == a["prompts"] >= 10


def test_device_status_reads_this_machine():
    from edgeagent.demo_tools import device_status

    status = device_status.invoke({}).value
    assert status["cpus"] == os.cpu_count() and status["disk_free_gb"] >= 0
    assert ("memory_total_mb" in status) == Path("/proc/meminfo").exists()


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="reads Linux's /proc/meminfo")
def test_device_status_memory_is_this_machines():
    from edgeagent.demo_tools import device_status

    status = device_status.invoke({}).value
    total_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    assert status["memory_total_mb"] == total_kb // 1024
    assert 0 < status["memory_available_mb"] <= status["memory_total_mb"]


def test_search_notes_finds_notes_by_all_their_words():
    from edgeagent.demo_tools import add_note, search_notes

    add_note.fn("Dentist on Tuesday at 9", title="dentist")
    add_note.fn("Buy oat milk")
    add_note.fn("Call the dentist about the bill")
    hits = search_notes.invoke({"query": "dentist"}).value
    assert [h["text"] for h in hits] == [
        "Dentist on Tuesday at 9",
        "Call the dentist about the bill",
    ]
    assert [h["text"] for h in search_notes.invoke({"query": "DENTIST bill"}).value] == [
        "Call the dentist about the bill"
    ]
    assert search_notes.invoke({"query": "piano"}).value == []


@pytest.mark.model
def test_an_interrupt_stops_a_prompt_evaluation_inside_llama_cpp():
    """The abort callback stops llama_decode between graph nodes: the cache holds only the
    batches finished before it, not the whole prompt (without the callback it would evaluate
    all of it first, and only then see the flag)."""
    from edgeagent.backends import GenerationStats, SamplingParams
    from edgeagent.backends.llamacpp import LlamaCppBackend
    from edgeagent.errors import Interrupted
    from edgeagent.models import default_model_path

    backend = LlamaCppBackend(default_model_path(), n_ctx=4096, n_batch=64)
    prompt = backend.tokenize("The weather is mild today. " * 500)[:3500]
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            pieces = backend.generate(prompt, grammar=None, sampling=SamplingParams(),
                                      max_tokens=4, stats=GenerationStats())  # fmt: skip
            list(pieces)
        except BaseException as exc:  # noqa: BLE001  (the test looks at what it was)
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    while backend._llm.n_tokens == 0 and worker.is_alive():  # the first batch is in
        time.sleep(0.001)
    backend.interrupt()
    worker.join(600)  # a hang guard
    assert outcome and isinstance(outcome[0], Interrupted), outcome
    assert 0 < backend._llm.n_tokens < len(prompt)
    backend.clear_interrupt()  # and the backend works on
    text = "".join(backend.generate(prompt[:20], grammar=None, sampling=SamplingParams(),
                                    max_tokens=4, stats=GenerationStats()))  # fmt: skip
    assert text


@pytest.mark.model
def test_chat_as_make_run_starts_it_answers_the_prompt_in_a_terminal(tmp_path):
    """`edgeagent chat --prompt ...` in a real pseudo-terminal: the model loads, the demo prompt
    runs (set_timer is asked for: the card and the question show), Ctrl+Q quits cleanly."""
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeagent", "chat", "--prompt",
         "Start a 12 minute timer for the pasta", "--memory", str(tmp_path / "chat.db")],
        stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, close_fds=True,
    )  # fmt: skip
    os.close(child_fd)
    screen = b""
    deadline = time.monotonic() + 600  # a hang guard: this takes seconds

    def read_until(word: bytes) -> bool:
        nonlocal screen
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([main_fd], [], [], 0.5)
            if ready:
                try:
                    screen += os.read(main_fd, 65536)
                except OSError:
                    return False
            if word in screen:
                return True
        return False

    try:
        assert read_until(b"set_timer"), screen[-2000:]  # the call card
        assert read_until(b"12"), screen[-2000:]
        os.write(main_fd, b"\x11")  # Ctrl+Q
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
